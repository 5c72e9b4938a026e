import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

export interface ClientCertificateArgs {
  /** Who the certificate is for (`user@host:port`, or `local`): its common name. */
  clientId: string;
  organization: string;
  caCertPem: pulumi.Input<string>;
  caPrivateKeyPem: pulumi.Input<string>;
  validityHours: number;
  earlyRenewalHours: number;
}

/**
 * One client host's key and certificate for mutual TLS, signed by the registry's CA
 * for client authentication only. ECDSA P-256: made in milliseconds, and Docker,
 * skopeo and nginx all speak it.
 */
export class ClientCertificate extends pulumi.ComponentResource {
  readonly certPem: pulumi.Output<string>;
  readonly privateKeyPem: pulumi.Output<string>;
  /** SHA-1 of the certificate, lower-case hex: what nginx's $ssl_client_fingerprint holds. */
  readonly fingerprint: pulumi.Output<string>;

  constructor(name: string, args: ClientCertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("private-registry:pki:ClientCertificate", name, {}, opts);

    const key = new tls.PrivateKey(`${name}-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent: this });
    const request = new tls.CertRequest(
      `${name}-csr`,
      {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: args.clientId, organization: args.organization },
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
        allowedUses: ["digital_signature", "client_auth"],
        setSubjectKeyId: true,
      },
      { parent: this },
    );

    this.certPem = cert.certPem;
    this.privateKeyPem = pulumi.secret(key.privateKeyPem);
    this.fingerprint = cert.certPem.apply(sha1Fingerprint);
    this.registerOutputs({ certPem: this.certPem, privateKeyPem: this.privateKeyPem, fingerprint: this.fingerprint });
  }
}

/** nginx's $ssl_client_fingerprint of a PEM certificate. */
export function sha1Fingerprint(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint.replace(/:/g, "").toLowerCase();
}
