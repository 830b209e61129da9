import ArgumentParser
import Audit
import Passes
import Profiles

extension ComputeUnitSet: ExpressibleByArgument {
    /// The canonical spelling or an alias (`cpu-and-ne`).
    public init?(argument: String) { self.init(spelling: argument) }
}

/// The options `audit` and `convert` share: which profile is the target, users' profile files, allowed compute
/// units and the chip for the cost model (input-shape pins are `InputShapeOptions`).
struct ProfileOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The target profile: neural-engine (audit's default), gpu, cpu, or the name of a --profile-file. Coverage (and audit's --min-coverage) is measured for its compute unit.",
                               valueName: "name"))
    var profile: String?

    @Option(name: .customLong("profile-file"),
            help: ArgumentHelp("A profile JSON file (docs/AUDIT.md) that replaces the built-in profile of its unit; repeatable.",
                               valueName: "file"))
    var profileFiles: [String] = []

    @Option(help: "Compute units the model may use (Core ML's MLComputeUnits): all, cpu-only, cpu-and-gpu or cpu-and-neural-engine (cpu-and-ne is accepted too). With a .mlpackage output, also recorded in its metadata as the recommendation.")
    var computeUnits: ComputeUnitSet = .all

    @Option(help: "The chip whose numbers the cost model uses (M1, M4 Pro; see `mlpkg profiles NAME`).")
    var chip: String = "M1"

    /// Whether any option asks for an assignment (convert audits only then).
    var requested: Bool { profile != nil || !profileFiles.isEmpty }

    /// The audit options: built-in profiles with users' files in their units' places.
    func auditOptions(inputShapes: InputShapes = InputShapes()) throws -> AuditOptions {
        var profiles: [ComputeUnit: Profile]
        var byName: [String: Profile] = [:]
        do {
            profiles = try ProfileLibrary.builtInUnitProfiles()
            for p in profiles.values { byName[p.name] = p }
            for file in profileFiles {
                let custom = try ProfileLibrary.load(file: file)
                guard let unit = custom.unit else {
                    throw CommandFailure("\(file): the profile declares no unit (set \"unit\" or extend a unit profile)")
                }
                profiles[unit] = custom
                byName[custom.name] = custom
            }
        } catch let error as ProfileError {
            throw CommandFailure(error.description)
        }
        let target: ComputeUnit
        if let name = profile {
            guard let p = byName[name], let unit = p.unit else {
                throw ValidationError("--profile \(name): no such profile (built-in: neural-engine, gpu, cpu\(profileFiles.isEmpty ? "" : "; or a --profile-file's name"))")
            }
            guard profiles[unit]?.name == p.name else {
                throw ValidationError("--profile \(name): its unit \(unit.rawValue) is taken by another --profile-file")
            }
            target = unit
        } else if let file = profileFiles.last, let unit = profiles.values.first(where: { $0.file == file })?.unit {
            target = unit
        } else {
            target = .neuralEngine
        }
        guard computeUnits.units.contains(target) else {
            throw ValidationError("--profile \(target.rawValue) is not among --compute-units \(computeUnits.rawValue) (\(computeUnits.units.map(\.rawValue).joined(separator: ", ")))")
        }
        for unit in computeUnits.units where profiles[unit]?.chips[chip] == nil {
            let known = profiles[unit]?.chipNames.joined(separator: ", ") ?? ""
            throw ValidationError("--chip \(chip): profile '\(profiles[unit]?.name ?? unit.rawValue)' has no numbers for it (known: \(known.isEmpty ? "none" : known))")
        }
        return AuditOptions(target: target, computeUnits: computeUnits, profiles: profiles, chip: chip,
                            inputShapes: inputShapes.order.map { name in
                                "\(name)=" + inputShapes.text(of: name)
                            }, coreMLLowering: true)
    }
}
