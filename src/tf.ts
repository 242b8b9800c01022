/**
 * The one TensorFlow.js namespace the library uses. Native and wasm backends register themselves into this same
 * tfjs-core instance (see engine/init.ts). Importing it sets nothing: initBackend puts tfjs in production mode.
 */
import * as tf from '@tensorflow/tfjs';

export { tf };
