import { tf } from '../../tf.js';

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
