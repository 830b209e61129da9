/// Repeatable options lifted out of the raw arguments before swift-argument-parser sees them.
///
/// The parser removes each parsed argument from an array (`SplitArguments.remove(at:)`), so a command line of n
/// options costs O(n²): 10,000 `--exclude` patterns took 8.6 s to parse, the same patterns in a `--config` file
/// 0.09 s. The patterns are taken out here in one pass and handed to the command after parsing; the parser then sees
/// a command line whose length does not depend on how many patterns were given.
struct RepeatedOptions {
    /// The options lifted, per subcommand: long names whose every occurrence takes one value.
    static let liftable: [String: Set<String>] = ["convert": ["--exclude", "--include"]]

    /// The arguments left for the parser.
    var remaining: [String]
    /// The values of each lifted option, in the order given, by option name (`--exclude`).
    var values: [String: [String]] = [:]
    /// Arguments visited: the work of `init`, linear in the number of arguments (tests count it).
    var steps = 0

    /// Splits `arguments` (without the program name). Nothing is lifted unless the first one names a subcommand with
    /// liftable options, nor past a `--` (what follows is positional), nor when an occurrence has no value the parser
    /// would take (missing, or starting with `-`): then the parser sees them all and reports the error as usual.
    init(_ arguments: [String]) {
        remaining = arguments
        guard let subcommand = arguments.first, let names = Self.liftable[subcommand] else { return }
        var kept: [String] = [subcommand]
        kept.reserveCapacity(arguments.count)
        var lifted: [String: [String]] = [:]
        var i = 1
        while i < arguments.count {
            steps += 1
            let argument = arguments[i]
            if argument == "--" {
                kept.append(contentsOf: arguments[i...])
                break
            }
            if names.contains(argument) {
                guard i + 1 < arguments.count, !arguments[i + 1].hasPrefix("-") else { return }
                lifted[argument, default: []].append(arguments[i + 1])
                i += 2
                continue
            }
            if let equals = argument.firstIndex(of: "="), names.contains(String(argument[..<equals])) {
                lifted[String(argument[..<equals]), default: []].append(String(argument[argument.index(after: equals)...]))
                i += 1
                continue
            }
            kept.append(argument)
            i += 1
        }
        remaining = kept
        values = lifted
    }

    /// The values of option `name`: the lifted ones, or `parsed` (what the parser found) when none were lifted.
    func values(of name: String, parsed: [String]) -> [String] {
        values[name] ?? parsed
    }
}
