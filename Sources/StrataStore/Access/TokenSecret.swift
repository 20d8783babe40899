import Crypto
import Foundation
import StrataCore

/// The secret of an API token: 256 bits from the system's cryptographic random source, written as
/// `strata_` and 43 base64url characters. It is shown once, to whoever asked for it; the catalog keeps
/// only its SHA-256.
public enum TokenSecret {
    /// A new secret. `SystemRandomNumberGenerator` reads the kernel's CSPRNG (`getrandom` on Linux).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "strata_" + base64
    }

    /// What is stored of a secret, and how a presented one is recognised: its SHA-256, in hex.
    public static func sha256(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).hexadecimal
    }

    /// The least a secret chosen by an operator (`STRATA_BOOTSTRAP_TOKEN`) must have.
    public static let minimumLength = 24
}
