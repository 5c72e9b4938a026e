import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, any>;
}

// Provider outputs the real providers compute; fixed, recognisable values.
function computedOutputs(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return { privateKeyPem: `PRIVATE-KEY(${name})` };
    case "tls:index/selfSignedCert:SelfSignedCert":
      return { certPem: `CERT(${name})` };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: `CSR(${name})` };
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: `CERT(${name})\n`, validityEndTime: "2027-11-28T00:00:00Z" };
    case "random:index/randomPassword:RandomPassword":
      return { result: `password-of-${name}`, bcryptHash: `$2a$10$hash-of-${name}` };
    case "random:index/randomString:RandomString":
      // A valid bcrypt salt: 22 characters of [./A-Za-z0-9].
      return { result: `${name.replace(/[^A-Za-z0-9]/g, "")}${"./".repeat(11)}`.slice(0, 22) };
    case "docker:index/container:Container":
      // A one-shot container (attach) ran to the end, successfully.
      return inputs.attach ? { exitCode: 0, containerLogs: "" } : {};
    case "docker:index/remoteImage:RemoteImage":
      return { imageId: `sha256:id-of-${inputs.name}` };
    default:
      return {};
  }
}

/** Installs Pulumi mocks that record every resource registration. */
export function recordResources(): RecordedResource[] {
  const recorded: RecordedResource[] = [];
  pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs) {
        const custom = args.custom !== false;
        if (custom) {
          recorded.push({ type: args.type, name: args.name, inputs: args.inputs });
        }
        return { id: `${args.name}-id`, state: { ...args.inputs, ...computedOutputs(args.type, args.name, args.inputs) } };
      },
      call(args: pulumi.runtime.MockCallArgs) {
        return args.inputs;
      },
    },
    "private-registry",
    "test",
    false,
  );
  return recorded;
}

export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

/** Waits until the mocks have seen a registration matching the predicate. */
export async function waitForResource(
  recorded: RecordedResource[],
  predicate: (r: RecordedResource) => boolean,
): Promise<RecordedResource> {
  for (let i = 0; i < 500; i++) {
    const found = recorded.find(predicate);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("resource was never registered");
}

/** A transformation for a component's options that records each child's resource options by name. */
export function recordOptions(into: Map<string, pulumi.CustomResourceOptions>): pulumi.ResourceTransformation {
  return (args) => {
    into.set(args.name, args.opts as pulumi.CustomResourceOptions);
    return undefined;
  };
}

/** True when a recorded input arrived as a Pulumi secret. */
export function isSecretInput(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig
  );
}

/** A recorded input with every secret wrapper removed. */
export function plain(value: any): any {
  if (isSecretInput(value)) return plain(value.value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
