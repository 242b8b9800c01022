/** Writing an ONNX model file chunk by chunk: small pieces gathered into one buffer, weights written as produced. */
import * as fs from 'node:fs';
import { writeAll } from '../fsutil.js';
import { T5clsError } from '../errors.js';
import { chunkBytes } from '../protobuf/wire.js';
import { encodeModel, type Graph } from '../protobuf/onnx_model.js';

/** The ONNX standard opset the export uses: onnxruntime-web and onnxruntime-node both run it. */
export const OPSET = 17;

/** Protobuf's limit on one message, hence on an ONNX file without external data. */
const MAX_MESSAGE_BYTES = 2 ** 31 - 1;
const BUFFER_BYTES = 1 << 16;

/** Writes `graph` as an ONNX model to `file` (created or replaced) and returns the file's size in bytes. */
export function writeOnnxFile(file: string, graph: Graph, producerVersion: string): number {
  const model = encodeModel({ graph, opsets: [{ domain: '', version: OPSET }], producerVersion });
  if (model.byteLength > MAX_MESSAGE_BYTES) {
    throw new T5clsError(
      `${graph.name}: the ONNX model would take ${(model.byteLength / 2 ** 30).toFixed(2)} GiB, over the 2 GiB a single ONNX ` +
        `file can hold (external data files are not supported yet)`,
    );
  }
  const fd = fs.openSync(file, 'w');
  try {
    const buffer = new Uint8Array(BUFFER_BYTES);
    let used = 0;
    const flush = () => {
      writeAll(fd, buffer.subarray(0, used));
      used = 0;
    };
    for (const chunk of model.chunks) {
      if (chunk.byteLength > BUFFER_BYTES / 4) {
        flush();
        writeAll(fd, chunkBytes(chunk));
      } else {
        if (used + chunk.byteLength > BUFFER_BYTES) flush();
        buffer.set(chunkBytes(chunk), used);
        used += chunk.byteLength;
      }
    }
    flush();
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return model.byteLength;
}
