import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";

/**
 * The image a container runs. With pull, a RemoteImage (kept on destroy, since
 * other stacks may share it) and the container follows its image ID; without
 * pull (air-gapped hosts), the reference as it is, which must exist locally.
 */
export function containerImage(name: string, reference: string, pull: boolean, parent: pulumi.Resource): pulumi.Input<string> {
  if (!pull) return reference;
  return new docker.RemoteImage(name, { name: reference, keepLocally: true }, { parent }).imageId;
}
