/// The erf form of GELU, 0.5 · x · (1 + erf(x / √2)), as exporters decompose it (BERT, ViT, ConvNeXt), →
/// gelu(x, mode=EXACT). Matched: erf of real_div(x, √2) or mul(x, 1/√2); add of 1; then either
/// mul(mul(x, ·), 0.5) or mul(mul(x, 0.5), ·), operands in either order. Every intermediate has one use.
public enum FuseGelu: MILPass {
    /// The name pipelines list and errors cite.
    public static let name = "fuse_gelu"

    /// Rewrites `program` in place (see the type's description).
    public static func run(_ program: MILProgram) {
        var changed = true
        while changed {
            changed = fuseOne(program)
        }
    }

    /// Operand pair of a binary op.
    static func operands(_ op: MILOperation) -> (String, String)? {
        guard let x = op.arguments("x")?.first?.variableName, let y = op.arguments("y")?.first?.variableName else { return nil }
        return (x, y)
    }

    static func fuseOne(_ program: MILProgram) -> Bool {
        let producers = program.producers()
        let uses = program.uses()
        let constants = program.constants()
        let outputs = Set(program.outputs)
        func single(_ v: String) -> Bool { uses[v]?.count == 1 && !outputs.contains(v) }
        func op(_ v: String) -> (Int, MILOperation)? { producers[v].map { ($0, program.operations[$0]) } }
        func constant(_ v: String, _ value: Float, _ tolerance: Float) -> Bool { PassSupport.isScalar(constants[v], value, tolerance: tolerance) }

        for (e, erf) in program.operations.enumerated() where erf.type == "erf" {
            guard let scaledName = erf.arguments("x")?.first?.variableName, single(scaledName), single(erf.outputs[0].name),
                  let (s, scaled) = op(scaledName), let (sx, sy) = operands(scaled) else { continue }
            let x: String
            if scaled.type == "real_div", constant(sy, 1.41421356, 1e-3) { x = sx }
            else if scaled.type == "mul", constant(sy, 0.70710678, 1e-3) { x = sx }
            else if scaled.type == "mul", constant(sx, 0.70710678, 1e-3) { x = sy }
            else { continue }
            // add(erf, 1)
            guard let addIndex = uses[erf.outputs[0].name]?.first else { continue }
            let add = program.operations[addIndex]
            guard add.type == "add", let (ax, ay) = operands(add), (ax == erf.outputs[0].name && constant(ay, 1, 1e-6)) || (ay == erf.outputs[0].name && constant(ax, 1, 1e-6)),
                  single(add.outputs[0].name), let m1Index = uses[add.outputs[0].name]?.first else { continue }
            let m1 = program.operations[m1Index]
            guard m1.type == "mul", let (m1x, m1y) = operands(m1) else { continue }
            let other = m1x == add.outputs[0].name ? m1y : m1x
            var chain: Set<Int> = [s, e, addIndex]
            var last: Int
            if other == x {
                // mul(mul(x, 1 + erf), 0.5)
                guard single(m1.outputs[0].name), let m2Index = uses[m1.outputs[0].name]?.first else { continue }
                let m2 = program.operations[m2Index]
                guard m2.type == "mul", let (m2x, m2y) = operands(m2),
                      (m2x == m1.outputs[0].name && constant(m2y, 0.5, 1e-6)) || (m2y == m1.outputs[0].name && constant(m2x, 0.5, 1e-6)) else { continue }
                chain.insert(m1Index)
                last = m2Index
            } else if let (h, half) = op(other), half.type == "mul", single(other), let (hx, hy) = operands(half),
                      (hx == x && constant(hy, 0.5, 1e-6)) || (hy == x && constant(hx, 0.5, 1e-6)) {
                // mul(mul(x, 0.5), 1 + erf)
                chain.insert(h)
                last = m1Index
            } else {
                continue
            }
            let final = program.operations[last]
            program.operations[last] = MILOperation(type: "gelu", name: final.name, inputs: [("x", [.variable(x)])],
                                                    outputs: final.outputs, source: final.source)
            program.remove(chain)
            let at = program.operations.firstIndex { $0.name == final.name }!
            let mode = program.insertConst(.scalar("EXACT"), name: final.name + "_mode", before: at, source: final.source)
            program.operations[at + 1].inputs.append(("mode", [.variable(mode)]))
            return true
        }
        return false
    }
}
