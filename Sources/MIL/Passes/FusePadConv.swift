/// A constant-mode pad of zeros on the spatial dims only, read by nothing but a conv, becomes the conv's own padding
/// (pad_type custom, the pad amounts added to the conv's): TF-style "same" padding and ONNX exports of
/// `nn.ZeroPad2d` write it so (coremltools' `fuse_pad_conv` in passes/defs/optimize_conv.py does the same). MIL's
/// pad lists (begin, end) pairs for the last N dims (iOS15/tensor_operation.py), conv's pad (begin, end) pairs per
/// spatial dim (iOS15/conv.py). Not for conv_transpose, whose pad crops. One walk, each pad an anchor.
public enum FusePadConv: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_pad_conv"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        let r = MILRewriter(program)
        for i in 0..<r.count where !r.isRemoved(i) {
            let pad = r.op(i)
            guard pad.type == "pad", let x = r.arg(pad, "x"), let xt = r.type(x), xt.rank >= 3,
                  let amounts = r.constantArgument(pad, "pad")?.intValues, amounts.count % 2 == 0,
                  (r.constantArgument(pad, "mode").flatMap(stringValue) ?? "constant") == "constant",
                  pad.arguments("constant_val") == nil || r.constantArgument(pad, "constant_val")?.floatValues == [0],
                  let c = r.soleUser(pad.outputs[0].name), case let conv = r.op(c), conv.type == "conv",
                  r.arg(conv, "x") == pad.outputs[0].name else { continue }
            let spatial = xt.rank - 2
            // Per dim of x, from the last N dims the pad lists; the batch and channel dims must not be padded.
            var full = [Int](repeating: 0, count: 2 * xt.rank)
            let first = xt.rank - amounts.count / 2
            guard first >= 0 else { continue }
            for k in 0..<(amounts.count / 2) {
                full[2 * (first + k)] = amounts[2 * k]
                full[2 * (first + k) + 1] = amounts[2 * k + 1]
            }
            guard full[0...3].allSatisfy({ $0 == 0 }) else { continue }
            let padType = r.constantArgument(conv, "pad_type").flatMap(stringValue) ?? "valid"
            var convPad: [Int]
            switch padType {
            case "valid": convPad = [Int](repeating: 0, count: 2 * spatial)
            case "custom":
                guard let p = r.constantArgument(conv, "pad")?.intValues, p.count == 2 * spatial else { continue }
                convPad = p
            default: continue
            }
            for k in 0..<(2 * spatial) { convPad[k] += full[4 + k] }
            var op = conv
            func set(_ param: String, _ value: MILConst) {
                let name = r.insertConst(value, name: conv.name + "_" + param, before: c, source: conv.source)
                if let k = op.inputs.firstIndex(where: { $0.name == param }) { op.inputs[k].arguments = [.variable(name)] }
                else { op.inputs.append((param, [.variable(name)])) }
            }
            set("pad_type", .scalar("custom"))
            set("pad", .ints(convPad))
            if let k = op.inputs.firstIndex(where: { $0.name == "x" }) { op.inputs[k].arguments = [.variable(x)] }
            r.replace(c, with: op)
            r.remove(i)
        }
        r.finish()
    }

    static func stringValue(_ c: MILConst) -> String? {
        if case .strings(let s) = c.data { return s.first }
        return nil
    }
}
