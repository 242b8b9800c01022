import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, formatDuration, formatRate, formatValue } from '../src/progress.js';

function fakeStream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { writes, isTTY, columns, write: (s: string) => writes.push(s) };
}

test('not a terminal: one plain line per interval, one at the end', () => {
  const stream = fakeStream(false);
  let t = 0;
  const p = new Progress({ label: 'train', total: 500, stream, now: () => t });
  assert.deepEqual(stream.writes, []);
  t = 1000;
  p.tick(50);
  t = 4999;
  p.tick(50);
  assert.deepEqual(stream.writes, []); // less than 5 s so far
  t = 5000;
  p.tick(20, { loss: 0.42312 });
  // 120 items in 5 s = 24.0 it/s; 380 left / 24 = 15.83 s -> 0:16; 120/500 = 24%
  assert.deepEqual(stream.writes, ['train 120/500 24% 24.0 it/s ETA 0:16 loss=0.4231\n']);
  t = 6000;
  p.tick(100);
  assert.equal(stream.writes.length, 1); // 1 s since the last line
  t = 10_000;
  p.tick(50, { lr: 3e-4 });
  // 270 in 10 s = 27.0 it/s; 230 / 27 = 8.52 s -> 0:09; 54%; loss is kept from the earlier tick
  assert.equal(stream.writes[1], 'train 270/500 54% 27.0 it/s ETA 0:09 loss=0.4231 lr=3.000e-4\n');
  t = 12_000;
  p.tick(230);
  t = 14_000;
  p.done();
  // 500 in 14 s = 35.71 it/s
  assert.deepEqual(stream.writes.slice(2), ['train 500/500 100% 35.7 it/s in 0:14 loss=0.4231 lr=3.000e-4\n']);
  p.done();
  p.tick(5);
  assert.equal(stream.writes.length, 3);
});

test('custom interval, slow items and no total', () => {
  const stream = fakeStream(false);
  let t = 0;
  const p = new Progress({ label: 'eval', total: 10, stream, now: () => t, interval: 10 });
  t = 9_999;
  p.tick();
  assert.equal(stream.writes.length, 0);
  t = 12_000;
  p.tick(0);
  // 1 item in 12 s -> 12.00 s/it; 9 left * 12 s = 108 s -> 1:48
  assert.deepEqual(stream.writes, ['eval 1/10 10% 12.00 s/it ETA 1:48\n']);

  const s2 = fakeStream(false);
  t = 0;
  const q = new Progress({ label: 'scan', stream: s2, now: () => t });
  q.tick(42);
  t = 5_000;
  q.done();
  // no total: count, rate 42/5 = 8.4 it/s, elapsed
  assert.deepEqual(s2.writes, ['scan 42 8.4 it/s in 0:05\n']);
});

test('terminal: a redrawn bar, throttled, ending with a newline', () => {
  const stream = fakeStream(true, 200);
  let t = 0;
  const p = new Progress({ label: 'train', total: 500, stream, now: () => t });
  assert.deepEqual(stream.writes, ['\rtrain [--------------------] 0/500 0% ? it/s ETA ?']);
  t = 50;
  p.tick(10);
  assert.equal(stream.writes.length, 1); // under 100 ms since the last draw
  t = 5000;
  p.tick(110, { loss: 0.4231 });
  // 24% of a 20-wide bar = 4.8 -> 4 marks
  assert.equal(stream.writes[1], '\rtrain [####----------------] 120/500 24% 24.0 it/s ETA 0:16 loss=0.4231');
  t = 5010;
  p.tick(380); // reaching the total always redraws
  assert.equal(stream.writes[2], '\rtrain [####################] 500/500 100% 99.8 it/s ETA 0:00 loss=0.4231');
  t = 6000;
  p.done();
  const last = stream.writes.at(-1)!;
  // 'in 0:06' is one character shorter than 'ETA 0:00', so one blank covers the rest of the previous line
  assert.equal(last, '\rtrain [####################] 500/500 100% 83.3 it/s in 0:06 loss=0.4231 \n');
  assert.ok(!stream.writes.join('').slice(0, -1).includes('\n'));
});

test('terminal: a shorter line blanks the rest of the previous one; long lines are cut to the width', () => {
  const stream = fakeStream(true, 30);
  let t = 0;
  const p = new Progress({ label: 'x', total: 10, stream, now: () => t, barWidth: 4 });
  assert.equal(stream.writes[0], '\rx [----] 0/10 0% ? it/s ETA ?');
  t = 1000;
  p.tick(5, { loss: 1.5 });
  // full line 'x [##--] 5/10 50% 5.0 it/s ETA 0:01 loss=1.5000' is cut to 29 characters
  assert.equal(stream.writes[1], '\rx [##--] 5/10 50% 5.0 it/s ET');
  const s = fakeStream(true, 80);
  const q = new Progress({ label: 'y', stream: s, now: () => t });
  t = 2000;
  q.tick(100);
  t = 2001;
  q.done();
  // 'y 0 ? it/s in 0:00' (18 chars), 'y 100 100.0 it/s in 0:01' (24), then the final line is one shorter (23)
  assert.deepEqual(s.writes, ['\ry 0 ? it/s in 0:00', '\ry 100 100.0 it/s in 0:01', '\ry 100 99.9 it/s in 0:01 \n']);

  const r = fakeStream(true, 80);
  t = 0;
  const w = new Progress({ label: 'z', total: 3, stream: r, now: () => t, barWidth: 3 });
  t = 1000;
  w.tick(1, { note: 'a long note here' });
  t = 2000;
  w.tick(1, { note: 'b' });
  // the second line is 15 characters shorter than the first, so 15 spaces follow it
  assert.equal(r.writes[1], '\rz [#--] 1/3 33% 1.0 it/s ETA 0:02 note=a long note here');
  assert.equal(r.writes[2], '\rz [##-] 2/3 66% 1.0 it/s ETA 0:01 note=b' + ' '.repeat(15));
});

test('quiet prints nothing', () => {
  for (const isTTY of [true, false]) {
    const stream = fakeStream(isTTY);
    let t = 0;
    const p = new Progress({ label: 'q', total: 5, stream, quiet: true, now: () => t });
    t = 60_000;
    p.tick(5);
    p.done();
    assert.deepEqual(stream.writes, []);
  }
});

test('formatting helpers', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(11.4), '0:11');
  assert.equal(formatDuration(59.6), '1:00');
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(36_000), '10:00:00');
  assert.equal(formatDuration(Infinity), '?');
  assert.equal(formatRate(35.14), '35.1 it/s');
  assert.equal(formatRate(0.4), '2.50 s/it');
  assert.equal(formatRate(0), '0.0 it/s');
  assert.equal(formatRate(undefined), '? it/s');
  assert.equal(formatValue(0.42312), '0.4231');
  assert.equal(formatValue(12), '12');
  assert.equal(formatValue(3e-4), '3.000e-4');
  assert.equal(formatValue(NaN), 'NaN');
  assert.equal(formatValue('ok'), 'ok');
});
