import CoreMLExport
import CoreMLProto
import CProtobufC
import Foundation
import GraphIR
import Testing

/// Image inputs and outputs and classifiers (`CoreMLInterfaceOptions.imageInputs`, `imageOutputs`, `classLabels`):
/// the labels file's grammar, the bias per channel, and the written model as the protoc-c reader of
/// proto/coreml.proto decodes it. coremltools' reading of the same models is tests/oracle/test_coreml_images.py.
@Suite struct ImageClassifierTests {
    /// x [1, 3, 4, 4] → 1×1 Conv (3 filters) → mean over H, W → Softmax: y [1, 3].
    static func classifier() -> Model {
        let w = (0..<9).map { Float($0 % 4) / 4 - 0.3 }
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
            Node(name: "mean", opType: "ReduceMean", inputs: ["c"], outputs: ["m"], attributes: [Attribute(name: "axes", value: .ints([2, 3])),
                                                                                             Attribute(name: "keepdims", value: .int(0))]),
            Node(name: "softmax", opType: "Softmax", inputs: ["m"], outputs: ["y"], attributes: [Attribute(name: "axis", value: .int(1))]),
        ]
        let graph = Graph(name: "g", inputs: [ValueInfo(name: "x", type: .tensor(TensorType(elementType: .float, shape: [.value(1), .value(3), .value(4), .value(4)])))],
                          outputs: [ValueInfo(name: "y", type: .tensor(TensorType(elementType: .float, shape: nil)))],
                          initializers: [Tensor(name: "w", dataType: .float, dims: [3, 3, 1, 1], data: .bytes(LittleEndian.bytes(of: w)))], nodes: nodes)
        return Model(irVersion: 10, opsetImports: [OpsetImport(domain: "", version: 13)], graph: graph)
    }

    static func options(_ configure: (inout CoreMLInterfaceOptions) -> Void) -> CoreMLExporter.Options {
        var options = CoreMLExporter.Options(compute: .fp32)
        configure(&options.interface)
        return options
    }

    @Test("a labels file: one label a line, int64 when every line is an integer, CRLF and a final newline accepted")
    func labelsGrammar() throws {
        guard case .strings(let s) = try CoreMLClassLabels.parse("\u{FEFF}cat\r\ndog\r\n", file: "l.txt") else { Issue.record("not strings"); return }
        #expect(s == ["cat", "dog"])
        guard case .strings(let unicode) = try CoreMLClassLabels.parse("chat 🐱\nperro\n", file: "l.txt") else { Issue.record("not strings"); return }
        #expect(unicode == ["chat 🐱", "perro"])
        guard case .int64s(let i) = try CoreMLClassLabels.parse("3\n-1\n9000000000", file: "l.txt") else { Issue.record("not ints"); return }
        #expect(i == [3, -1, 9_000_000_000])
        guard case .strings(let mixed) = try CoreMLClassLabels.parse("1\ntwo\n", file: "l.txt") else { Issue.record("not strings"); return }
        #expect(mixed == ["1", "two"])
        for (text, needle) in [("", "no labels"), ("a\n\nb\n", "line 2 is empty"), ("a\nb\na\n", "lines 1 and 3"), ("1\n01\n", "unique")] {
            #expect(throws: CoreMLInputFileError.self) { _ = try CoreMLClassLabels.parse(text, file: "l.txt") }
            do {
                _ = try CoreMLClassLabels.parse(text, file: "l.txt")
            } catch {
                #expect(error.description.hasPrefix("l.txt: ") && error.description.contains(needle), "\(error)")
            }
        }
    }

    @Test("the bias is per tensor channel: R,G,B reversed for BGR, one value for every channel, none when all zero")
    func channelBias() throws {
        let dir = CoreMLExportTests.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (space, bias, want) in [(ImageColorSpace.bgr, [Float(1), 2, 3], [Float(3), 2, 1]), (.rgb, [1, 2, 3], [1, 2, 3]), (.rgb, [5], [5, 5, 5])] {
            let path = dir + "/\(space)\(bias.count).mlpackage"
            _ = try CoreMLExporter.export(Self.classifier(), to: path, options: Self.options {
                $0.imageInputs = [CoreMLImageInput(name: "x", colorSpace: space, scale: 1, bias: bias)]
            })
            let ops = try Self.decodedOps(path)
            #expect(ops.map(\.type).filter { $0 != "const" }.prefix(1) == ["add"], "scale 1: no mul")
            #expect(ops.first { $0.type == "const" && $0.output == "x__biased___y" }?.floats == want)
        }
        _ = try CoreMLExporter.export(Self.classifier(), to: dir + "/zero.mlpackage", options: Self.options {
            $0.imageInputs = [CoreMLImageInput(name: "x", colorSpace: .rgb, scale: 1, bias: [0, 0, 0])]
        })
        #expect(!(try Self.decodedOps(dir + "/zero.mlpackage")).contains { $0.type == "add" || $0.type == "mul" })
    }

    @Test("an image classifier: the image input, classLabel and its dictionary, classify last; the same bytes twice")
    func imageClassifier() throws {
        let dir = CoreMLExportTests.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let options = Self.options {
            $0.imageInputs = [CoreMLImageInput(name: "x", colorSpace: .bgr, scale: 0.5, bias: [1, 2, 3])]
            $0.classLabels = CoreMLClassLabels(output: nil, labels: .strings(["a", "b", "c"]), file: "labels.txt")
        }
        _ = try CoreMLExporter.export(Self.classifier(), to: dir + "/A.mlpackage", options: options)
        _ = try CoreMLExporter.export(Self.classifier(), to: dir + "/B.mlpackage", options: options)
        let model = "/Data/com.apple.CoreML/model.mlmodel"
        #expect(FileManager.default.contents(atPath: dir + "/A.mlpackage" + model) == FileManager.default.contents(atPath: dir + "/B.mlpackage" + model))

        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/A.mlpackage" + model)))
        let decoded = try #require(bytes.withUnsafeBufferPointer { coreml__model__unpack(nil, $0.count, $0.baseAddress) })
        defer { coreml__model__free_unpacked(decoded, nil) }
        let description = try #require(decoded.pointee.description?.pointee)
        let input = try #require(description.input[0]?.pointee.type?.pointee)
        #expect(input.type_case == COREML__FEATURE_TYPE__TYPE_IMAGE_TYPE)
        let image = try #require(input.imagetype?.pointee)
        #expect(image.width == 4 && image.height == 4 && image.colorspace == COREML__IMAGE_FEATURE_TYPE__COLOR_SPACE__BGR)
        #expect(String(cString: description.predictedfeaturename) == "classLabel")
        #expect(String(cString: description.predictedprobabilitiesname) == "classLabel_probs")
        let outputs = (0..<description.n_output).map { description.output[$0]!.pointee }
        #expect(outputs.map { String(cString: $0.name) } == ["classLabel", "classLabel_probs"])
        #expect(outputs.map { $0.type!.pointee.type_case } == [COREML__FEATURE_TYPE__TYPE_STRING_TYPE, COREML__FEATURE_TYPE__TYPE_DICTIONARY_TYPE])

        let ops = try Self.decodedOps(dir + "/A.mlpackage").filter { $0.type != "const" }
        #expect(Array(ops.prefix(2).map(\.type)) == ["mul", "add"])
        #expect(ops.last?.type == "classify")
    }

    @Test("options that do not fit the model are interface errors naming the option and the feature")
    func refusals() throws {
        let dir = CoreMLExportTests.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(String, (inout CoreMLInterfaceOptions) -> Void)] = [
            ("a gray image is [1, 1, H, W]", { $0.imageInputs = [CoreMLImageInput(name: "x", colorSpace: .grayscale)] }),
            ("no input 'nope'", { $0.imageInputs = [CoreMLImageInput(name: "nope")] }),
            ("--bias: 3 values for the 1-channel image input 'x'", { $0.imageInputs = [CoreMLImageInput(name: "x", colorSpace: .grayscale, bias: [1, 2, 3])] }),
            ("--image-input …=gray-fp16 needs --deployment-target iOS16", {
                $0.imageInputs = [CoreMLImageInput(name: "x", colorSpace: .grayscaleFloat16)]
            }),
            ("an image output is [1, 3, H, W]", { $0.imageOutputs = ["y"] }),
            ("2 labels, but output 'y' has shape [1, 3]", { $0.classLabels = CoreMLClassLabels(output: nil, labels: .int64s([1, 2]), file: "l.txt") }),
            ("no output 'z'", { $0.classLabels = CoreMLClassLabels(output: "z", labels: .int64s([1, 2, 3]), file: "l.txt") }),
        ]
        for (needle, configure) in cases {
            do {
                var options = Self.options(configure)
                if needle.contains("gray-fp16") { options.target = .iOS15 }
                _ = try CoreMLExporter.export(Self.classifier(), to: dir + "/R.mlpackage", options: options)
                Issue.record("exported despite: \(needle)")
            } catch let error as CoreMLInterfaceError {
                #expect(error.message.contains(needle), "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: dir + "/R.mlpackage"))
        }
    }

    struct DecodedOp {
        var type: String
        var output: String
        var floats: [Float]?
    }

    /// The main block's ops: type, first output, and a const's inline fp32 values.
    static func decodedOps(_ package: String) throws -> [DecodedOp] {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: package + "/Data/com.apple.CoreML/model.mlmodel")))
        let decoded = try #require(bytes.withUnsafeBufferPointer { coreml__model__unpack(nil, $0.count, $0.baseAddress) })
        defer { coreml__model__free_unpacked(decoded, nil) }
        let function = try #require(decoded.pointee.mlprogram?.pointee.functions[0]?.pointee.value?.pointee)
        let block = try #require(function.block_specializations[0]?.pointee.value?.pointee)
        return (0..<block.n_operations).map { i in
            let op = block.operations[i]!.pointee
            var floats: [Float]?
            for a in 0..<op.n_attributes where String(cString: op.attributes[a]!.pointee.key) == "val" {
                if let tensor = op.attributes[a]!.pointee.value?.pointee.immediatevalue?.pointee.tensor?.pointee,
                   tensor.value_case == COREML__TENSOR_VALUE__VALUE_FLOATS, let f = tensor.floats?.pointee {
                    floats = (0..<f.n_values).map { f.values[$0] }
                }
            }
            return DecodedOp(type: String(cString: op.type), output: op.n_outputs > 0 ? String(cString: op.outputs[0]!.pointee.name) : "", floats: floats)
        }
    }
}
