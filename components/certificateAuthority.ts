import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { KeyAlgorithm } from "../lib/settings";

export interface KeySpec {
  keyAlgorithm: KeyAlgorithm;
  rsaBits: number;
}

/** tls.PrivateKey arguments for RSA of the given size, or ECDSA P-256. */
export function privateKeyArgs(spec: KeySpec): tls.PrivateKeyArgs {
  return spec.keyAlgorithm === "RSA" ? { algorithm: "RSA", rsaBits: spec.rsaBits } : { algorithm: "ECDSA", ecdsaCurve: "P256" };
}

export interface CertificateAuthorityArgs extends KeySpec {
  commonName: string;
  organization: string;
  validityDays: number;
}

/** The registry's own root CA: a private key and a self-signed CA certificate. */
export class CertificateAuthority extends pulumi.ComponentResource {
  readonly certPem: pulumi.Output<string>;
  readonly privateKeyPem: pulumi.Output<string>;

  constructor(name: string, args: CertificateAuthorityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:pki:CertificateAuthority", name, {}, opts);

    const key = new tls.PrivateKey(`${name}-key`, privateKeyArgs(args), { parent: this });
    const cert = new tls.SelfSignedCert(
      `${name}-cert`,
      {
        privateKeyPem: key.privateKeyPem,
        isCaCertificate: true,
        subject: { commonName: args.commonName, organization: args.organization },
        validityPeriodHours: args.validityDays * 24,
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        setSubjectKeyId: true,
      },
      { parent: this },
    );

    this.certPem = cert.certPem;
    this.privateKeyPem = pulumi.secret(key.privateKeyPem);
    this.registerOutputs({ certPem: this.certPem, privateKeyPem: this.privateKeyPem });
  }
}
