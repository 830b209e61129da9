// One import for the whole library: `import MLPkgKit` brings every public module of mlpkg into scope.
// (An app that only reads packages imports `MLPackage` from the `MLPkgFormat` product instead: no ONNX importer,
// no libprotobuf-c.)
@_exported import Audit
@_exported import Conversion
@_exported import CoreMLExport
@_exported import CoreMLPackage
@_exported import Evaluate
@_exported import GraphIR
@_exported import Inspection
@_exported import MIL
@_exported import MLPackage
@_exported import ONNXExport
@_exported import ONNXImport
@_exported import Ops
@_exported import Passes
@_exported import Profiles
@_exported import Quantization
