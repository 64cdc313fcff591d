import AEMPCR
let args = CommandLine.arguments
let img = try MLEImage(path: args[1])
print(img.header)
for (k, v) in try img.hash(cmdline: args.count > 2 ? args[2] : "", banks: HashAlgorithm.computable).sorted(by: { $0.key < $1.key }) { print(k, v) }
