import Testing
@testable import GraphIR

@Suite struct DataTypeTests {
    @Test("every ONNX data type number maps to a case and back")
    func rawValues() {
        for raw in Int32(1)...28 {
            let type = DataType(rawValue: raw)
            #expect(type != nil, "data type \(raw)")
            #expect(type.map { DataType(name: $0.name) } == type)
        }
        #expect(DataType(rawValue: 0) == nil)
        #expect(DataType(rawValue: 29) == nil)
    }

    @Test("storage bytes pack sub-byte types and round up",
          arguments: [(DataType.float, 3, 12), (.int4, 3, 2), (.uint4, 4, 2), (.int2, 5, 2), (.float6e2m3, 4, 3),
                      (.float6e3m2, 5, 4), (.bool, 7, 7), (.complex128, 2, 32), (.bfloat16, 0, 0)])
    func storageBytes(type: DataType, elements: Int, bytes: Int) {
        #expect(type.storageBytes(elements: elements) == bytes)
    }

    @Test func storageBytesRefusesStringsAndOverflow() {
        #expect(DataType.string.storageBytes(elements: 1) == nil)
        #expect(DataType.double.storageBytes(elements: Int.max / 2) == nil)
    }

    @Test func elementCountChecksDims() {
        #expect(Tensor.elementCount(of: []) == 1)
        #expect(Tensor.elementCount(of: [2, 0, 5]) == 0)
        #expect(Tensor.elementCount(of: [3, -1]) == nil)
        #expect(Tensor.elementCount(of: [1 << 40, 1 << 40]) == nil)
    }
}
