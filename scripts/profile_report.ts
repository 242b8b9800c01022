/** Prints a tfjs profile: kernel time per kernel name, then matrix products per input shapes (milliseconds). */
import { tf } from '../src/tf.js';

type Profile = Awaited<ReturnType<typeof tf.profile>>;

export function printProfile(prof: Profile): void {
  const byKernel = new Map<string, [number, number]>();
  const byShape = new Map<string, [number, number]>();
  const add = (map: Map<string, [number, number]>, key: string, ms: number) => {
    const [t, n] = map.get(key) ?? [0, 0];
    map.set(key, [t + ms, n + 1]);
  };
  for (const k of prof.kernels) {
    const ms = k.kernelTimeMs as number;
    add(byKernel, k.name, ms);
    if (k.name === 'BatchMatMul' || k.name === '_FusedMatMul') {
      add(byShape, `${k.name} ${k.inputShapes.map((s) => (s ?? []).join('x')).join(' · ')}`, ms);
    }
  }
  const sorted = (map: Map<string, [number, number]>, most: number) => [...map].sort((a, b) => b[1][0] - a[1][0]).slice(0, most);
  const total = [...byKernel.values()].reduce((a, [t]) => a + t, 0);
  // Scopes such as customGrad's "forward" include the kernels they ran: their lines overlap the others.
  console.log(`kernel time ${total.toFixed(0)} ms in ${prof.kernels.length} kernel calls`);
  for (const [name, [t, n]] of sorted(byKernel, 20)) {
    console.log(`${name.padEnd(24)} ${t.toFixed(1)} ms  ${((100 * t) / total).toFixed(1)}%  ${n} calls`);
  }
  console.log('matrix products by input shapes (operands as stored, transposes not shown):');
  for (const [key, [t, n]] of sorted(byShape, 14)) console.log(`  ${key.padEnd(48)} ${t.toFixed(1)} ms  ${n} calls`);
}
