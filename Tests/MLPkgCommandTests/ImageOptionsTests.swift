import CoreMLExport
import Testing
@testable import mlpkg

/// The Core ML image and classifier options as the command line reads them: `--image-input NAME[=space]`,
/// `--scale`, `--bias` (negative values as they are), and the interface options they become.
@Suite struct ImageOptionsTests {
    @Test("--image-input NAME[=rgb|bgr|gray|gray-fp16]; --scale and --bias reach every image input")
    func parsing() throws {
        let options = try CoreMLOptions.parse(["--image-input", "a", "--image-input", "b=bgr", "--image-input", "c=gray-fp16",
                                               "--scale", "0.5", "--bias", "-1,-2,-3", "--image-output", "y"])
        let i = options.interface
        #expect(i.imageInputs == [CoreMLImageInput(name: "a", colorSpace: .rgb, scale: 0.5, bias: [-1, -2, -3]),
                                  CoreMLImageInput(name: "b", colorSpace: .bgr, scale: 0.5, bias: [-1, -2, -3]),
                                  CoreMLImageInput(name: "c", colorSpace: .grayscaleFloat16, scale: 0.5, bias: [-1, -2, -3])])
        #expect(i.imageOutputs == ["y"])
        #expect(options.given == ["--image-input", "--scale", "--bias", "--image-output"])
        #expect(try CoreMLOptions.parse(["--image-input", "x=gray", "--bias", "-0.5"]).interface.imageInputs[0].bias == [-0.5])
    }

    @Test("malformed values are usage errors")
    func refusals() {
        for arguments in [["--image-input", "x=cmyk"], ["--image-input", "=rgb"], ["--scale", "2"], ["--image-input", "x", "--bias", "1,2"],
                          ["--image-input", "x", "--bias", "1,a,3"], ["--image-input", "x", "--scale", "inf"], ["--class-labels", ""]] {
            #expect(throws: (any Error).self, "\(arguments)") { _ = try CoreMLOptions.parse(arguments) }
        }
    }
}
