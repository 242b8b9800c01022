/**
 * The one TensorFlow.js namespace the library uses. Native and wasm backends register themselves into this same
 * tfjs-core instance (see backend.ts).
 */
import * as tf from '@tensorflow/tfjs';

// Production mode: skips tfjs's debug checks and its "install tfjs-node" console hint; backend.ts reports the
// backend in use instead.
tf.env().set('PROD', true);

export { tf };
