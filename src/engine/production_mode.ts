/**
 * tfjs's production mode: no console hints or warnings from tfjs (its "install tfjs-node" hint among them), as
 * initBackend reports the backend in use itself. Set when t5cls starts or probes backends, never at import.
 */
import { tf } from '../tf.js';

export function useProductionMode(): void {
  tf.env().set('PROD', true);
}
