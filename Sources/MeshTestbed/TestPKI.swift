import Crypto
import Foundation
import MeshControl
import MeshKernel
import SwiftASN1
import X509

/// A throwaway certificate authority for tests of the control channel: a P-256 root and leaf
/// certificates (server and client use) whose common name is the node id.
public struct TestPKI: Sendable {
    public let caPEM: String
    public let caDER: [UInt8]
    /// Kept as bytes: the key type is not Sendable.
    let caKeyBytes: Data
    let caName: DistinguishedName

    public init(name: String = "meshd test CA") throws {
        let caKey = P256.Signing.PrivateKey()
        caKeyBytes = caKey.rawRepresentation
        caName = try DistinguishedName { CommonName(name) }
        let now = Date()
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now - 60, notValidAfter: now + 3600, issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            }, issuerPrivateKey: .init(caKey))
        caPEM = try ca.serializeAsPEM().pemString
        caDER = try ca.serializeAsPEM().derBytes
    }

    /// `ipAddresses`: subject alternative names a TLS client checks the server's address against
    /// (Go's TLS, so the docker CLI, ignores the common name).
    public func issue(_ commonName: String, ipAddresses: [String] = []) throws -> ControlIdentity {
        let key = P256.Signing.PrivateKey()
        let caKey = try P256.Signing.PrivateKey(rawRepresentation: caKeyBytes)
        let now = Date()
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 60, notValidAfter: now + 3600, issuer: caName,
            subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                if !ipAddresses.isEmpty {
                    SubjectAlternativeNames(
                        ipAddresses.compactMap { IPAddress($0) }.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0.bytes))) })
                }
            }, issuerPrivateKey: .init(caKey))
        return ControlIdentity(
            certificateChainPEM: try leaf.serializeAsPEM().pemString + "\n" + caPEM, privateKeyPEM: key.pemRepresentation)
    }
}
