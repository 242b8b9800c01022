/**
 * The one TensorFlow.js namespace the library uses. Native and wasm backends register themselves into this same
 * tfjs-core instance (see engine/init.ts).
 */
import * as tf from '@tensorflow/tfjs';

// Production mode: skips tfjs's debug checks and its "install tfjs-node" console hint; engine/init.ts reports the
// backend in use instead.
tf.env().set('PROD', true);

export { tf };
