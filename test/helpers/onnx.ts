// Editing ONNX files for tests without a protobuf library.

/** Appends a metadata_props entry to an ONNX file: protobuf keeps the last value of a key. */
export function withMetadata(onnx: Buffer, key: string, value: string): Buffer {
  const field = (tag: number, bytes: Buffer) => Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);
  const entry = Buffer.concat([field(0x0a, Buffer.from(key)), field(0x12, Buffer.from(value))]);
  return Buffer.concat([onnx, field(0x72, entry)]); // ModelProto.metadata_props = 14, wire type 2
}
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
