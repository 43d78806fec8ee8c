// Reads `metadata_props` from an ONNX file. onnxruntime-node exposes input/output metadata but
// not a model's custom metadata, and the model contract carries class names, input size and
// version there (docs/contracts.md). Pulling in a protobuf runtime plus onnx.proto for two
// string fields would be far more code than this reader of the wire format.

const MODEL_METADATA_PROPS = 14; // ModelProto.metadata_props (repeated StringStringEntryProto)
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  get done() {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const byte = this.buf[this.pos++];
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wireType}`);
    if (this.pos > this.buf.length) throw new Error('truncated field');
  }
}

/** The model's metadata_props as a plain object; throws on bytes that are not a protobuf. */
export function readOnnxMetadata(model: Uint8Array): Record<string, string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const props: Record<string, string> = {};
  const r = new Reader(model);
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === MODEL_METADATA_PROPS && wire === 2) {
      const entry = new Reader(r.bytes());
      let key = '';
      let value = '';
      while (!entry.done) {
        const t = entry.varint();
        if (Math.floor(t / 8) === ENTRY_KEY && (t & 7) === 2) key = decoder.decode(entry.bytes());
        else if (Math.floor(t / 8) === ENTRY_VALUE && (t & 7) === 2) value = decoder.decode(entry.bytes());
        else entry.skip(t & 7);
      }
      props[key] = value;
    } else {
      r.skip(wire);
    }
  }
  return props;
}
