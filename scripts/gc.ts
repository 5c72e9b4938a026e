// The containers `npm run gc` stops and starts, from the stack's `containers` output:
// prints "REGISTRY PROXY" (PROXY empty in the direct layout, tlsTermination: registry).
// Run by scripts/gc.sh, which drives the Docker engine.
//   tsx scripts/gc.ts --stack NAME
import { runMain, stackArg, stackOutputs, workspace } from "./stackData";

runMain("gc", async () => {
  const { stack } = stackArg(process.argv.slice(2));
  const containers = (await stackOutputs(await workspace(), stack)).containers?.value as { registry?: string; proxy?: string } | undefined;
  if (!containers?.registry) {
    throw new Error(`stack ${stack} has no registry container in its outputs: deploy it first (npm run deploy -- --stack ${stack})`);
  }
  console.log(`${containers.registry} ${containers.proxy ?? ""}`.trim());
});
