import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
const w = new BinaryWriter();
w.tag(1, WireType.Varint).uint32(5);
w.tag(10, WireType.LengthDelimited).bytes(new Uint8Array([1, 2, 3]));
console.log(w.finish());
