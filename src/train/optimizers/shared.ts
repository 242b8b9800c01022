import { tf } from '../../tf.js';
import { FormatError } from '../../errors.js';

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** The (variable, gradient) pairs of an `applyGradients` call; names are tf variable names. */
export function gradientPairs(
  variableGradients: tf.NamedTensorMap | NamedTensor[],
  optimizerName: string,
): [name: string, variable: tf.Variable, gradient: tf.Tensor][] {
  const entries: [string, tf.Tensor | undefined][] = Array.isArray(variableGradients)
    ? variableGradients.map((v) => [v.name, v.tensor])
    : Object.entries(variableGradients);
  const out: [string, tf.Variable, tf.Tensor][] = [];
  for (const [name, gradient] of entries) {
    if (gradient == null) continue;
    const variable = tf.engine().registeredVariables[name];
    if (variable === undefined) throw new Error(`${optimizerName}: no variable named "${name}" is registered`);
    out.push([name, variable, gradient]);
  }
  return out;
}

/**
 * Groups the entries of a saved optimizer state (`<variable>/<key>`, plus `iter`) by variable, refusing keys the
 * optimizer does not know.
 */
export function groupState<K extends string>(weightValues: NamedTensor[], keys: readonly K[], who: string): Map<string, Map<K, tf.Tensor>> {
  const groups = new Map<string, Map<K, tf.Tensor>>();
  for (const { name, tensor } of weightValues) {
    if (name === 'iter') continue;
    const cut = name.lastIndexOf('/');
    const key = name.slice(cut + 1) as K;
    if (cut <= 0 || !keys.includes(key)) {
      throw new FormatError(`${who} state: unexpected entry "${name}" (expected <variable>/<${keys.join('|')}>)`);
    }
    const variable = name.slice(0, cut);
    let g = groups.get(variable);
    if (g === undefined) groups.set(variable, (g = new Map()));
    g.set(key, tensor);
  }
  return groups;
}
