// A proxy that does not serve is not a success: a real `pulumi up` (through
// `npm run deploy`, as a user runs it) whose nginx image is not nginx (an sshd image,
// which the pre-flight cannot tell from nginx and which listens on no TLS port) must
// fail on the proxy's health check, name the container, its image and its last log
// lines, and not report a registry that answers nothing.
import { deployment, IMAGES } from "./helpers/deployment";

jest.setTimeout(300_000);

const NOT_NGINX = IMAGES["ssh-client-host"];
const d = deployment({ tag: "proxyhealth", up: false, config: { nginxImage: NOT_NGINX } });

test("up fails when the proxy container never listens, and says which container, which image, and what it logged", async () => {
  const deploy = d.npmRun("deploy", ["--stack", d.id]);
  const output = `${deploy.stdout}${deploy.stderr}`;
  expect(deploy.status).not.toBe(0);
  expect(output).toMatch(/registry-proxy-container \*\*creating failed\*\*/);
  expect(output).toContain("container failed to be in healthy state");
  // What the provider does not say: which container, which image, and its last words.
  expect(output).toMatch(
    new RegExp(`\\[deploy\\] container ${d.id}-nginx \\(image ${NOT_NGINX}\\) is (running|exited)[^\\n]*health: (unhealthy|starting)`),
  );
  expect(output).toContain("the last lines of its log:");
  expect(output).toContain("its last health check said:");
  // Nothing claims a registry that answers: no endpoints, no login lines.
  const outputs = await d.stack.outputs();
  expect(outputs.endpoints).toBeUndefined();
  expect(outputs.dockerLoginCommand).toBeUndefined();
  expect(outputs.dockerLoginCommands).toBeUndefined();
});
