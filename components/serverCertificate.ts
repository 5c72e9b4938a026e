import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { KeySpec, privateKeyArgs } from "./certificateAuthority";
import { withNewline } from "../lib/pem";

export interface ServerCertificateArgs extends KeySpec {
  caCertPem: pulumi.Input<string>;
  caPrivateKeyPem: pulumi.Input<string>;
  /** Every IP address clients dial: each becomes an IP SAN. */
  ipAddresses: string[];
  /** Every DNS name clients dial: each becomes a DNS SAN. */
  dnsNames: string[];
  organization: string;
  validityHours: number;
  /** A `pulumi up` this close to the expiry issues a new certificate. */
  earlyRenewalHours: number;
}

/** The registry host's key and certificate, signed by the CA, naming every address clients dial. */
export class ServerCertificate extends pulumi.ComponentResource {
  readonly certPem: pulumi.Output<string>;
  /** Leaf then CA: what nginx serves so clients can build the path. */
  readonly chainPem: pulumi.Output<string>;
  readonly privateKeyPem: pulumi.Output<string>;
  /** RFC 3339 time after which the certificate is no longer valid. */
  readonly expiresAt: pulumi.Output<string>;

  constructor(name: string, args: ServerCertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:pki:ServerCertificate", name, {}, opts);

    const key = new tls.PrivateKey(`${name}-key`, privateKeyArgs(args), { parent: this });
    const request = new tls.CertRequest(
      `${name}-csr`,
      {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: args.dnsNames[0] ?? args.ipAddresses[0], organization: args.organization },
        ipAddresses: args.ipAddresses,
        dnsNames: args.dnsNames,
      },
      { parent: this },
    );
    const cert = new tls.LocallySignedCert(
      `${name}-cert`,
      {
        certRequestPem: request.certRequestPem,
        caCertPem: args.caCertPem,
        caPrivateKeyPem: args.caPrivateKeyPem,
        validityPeriodHours: args.validityHours,
        earlyRenewalHours: args.earlyRenewalHours,
        // key_encipherment only means something for RSA key exchange.
        allowedUses:
          args.keyAlgorithm === "RSA" ? ["digital_signature", "key_encipherment", "server_auth"] : ["digital_signature", "server_auth"],
        setSubjectKeyId: true,
      },
      { parent: this },
    );

    this.certPem = cert.certPem;
    this.chainPem = pulumi.interpolate`${cert.certPem.apply(withNewline)}${pulumi.output(args.caCertPem).apply(withNewline)}`;
    this.privateKeyPem = pulumi.secret(key.privateKeyPem);
    this.expiresAt = cert.validityEndTime;
    this.registerOutputs({ certPem: this.certPem, chainPem: this.chainPem, privateKeyPem: this.privateKeyPem, expiresAt: this.expiresAt });
  }
}
