// The bad configurations the reliability suite runs through a real `pulumi up`:
// each with the one message a user must see. Settings that only the hosts can
// judge (a busy port, a taken name, a client host that says no) use the fixtures
// that tests/badConfig.test.ts sets up, passed in as `Fixtures`.
// Client hosts are only ever this machine's loopback: never a documentation address.
import { localImages } from "../../lib/localImages";

/** One config entry: key (a --path), value, secret. */
export type ConfigEntry = [string, string, boolean?];

export interface Fixtures {
  /** A real sshd that accepts `sshKey` for root and for `noSudoUser` (who has no sudo). */
  sshPort: number;
  sshKey: string;
  otherKey: string;
  noSudoUser: string;
  /** The container publishing sshPort. */
  sshContainer: string;
  /** Accepts TCP, never speaks. */
  silentPort: number;
  /** Another program listens here. */
  busyPort: number;
  /** Nothing listens here: a free port for the registry. */
  freePort: number;
  /** Nothing listens here either, and nothing will: a refused one for SSH. */
  refusedPort: number;
  /** Name prefixes whose network, volume or registry container exists and belongs to no stack. */
  takenNetworkPrefix: string;
  takenVolumePrefix: string;
  takenContainerPrefix: string;
}

export interface BadConfigCase {
  name: string;
  config: (f: Fixtures) => ConfigEntry[];
  /** The message the run must print (a substring of Pulumi's output: the line after "error: "). */
  message: (f: Fixtures) => string;
}

const KEY = (k: string) => `"private-registry:${k}"`;
const invalid = (key: string, shown: string, why: string) => `Invalid config ${KEY(key)} = ${shown}: ${why}`;

const IMAGES = localImages();
const LOCAL_REGISTRY_IMAGE = IMAGES.registry;
const LOCAL_NGINX_IMAGE = IMAGES.nginx;

/** Local images, no pull, a free loopback port: only the setting under test is wrong. */
export const sound = (f: Fixtures): ConfigEntry[] => [
  ["registryImage", LOCAL_REGISTRY_IMAGE],
  ["nginxImage", LOCAL_NGINX_IMAGE],
  ["pullImages", "false"],
  ["listenAddress", "127.0.0.1"],
  ["port", String(f.freePort)],
];

const client = (i: number, port: number, key: string, user = "root"): ConfigEntry[] =>
  [
    [`clients[${i}].host`, "127.0.0.1"],
    [`clients[${i}].port`, port],
    [`clients[${i}].user`, user],
    [`clients[${i}].privateKey`, key, true],
  ].map(([k, v, s]) => [String(k), String(v), s as boolean | undefined]);

/** Settings the program refuses on sight: format, range, duplicates, unknown keys. */
export const settingCases: BadConfigCase[] = [
  {
    name: "port above 65535",
    config: () => [["port", "70000"]],
    message: () => invalid("port", '"70000"', "must be a whole number from 1 to 65535."),
  },
  { name: "port 0", config: () => [["port", "0"]], message: () => invalid("port", '"0"', "must be a whole number from 1 to 65535.") },
  { name: "port not a number", config: () => [["port", "https"]], message: () => "configuration key 'port' must be of type 'integer'" },
  {
    name: "passwordLength below 16",
    config: () => [["passwordLength", "8"]],
    message: () => invalid("passwordLength", '"8"', "must be a whole number from 16 to 72."),
  },
  {
    name: "passwordLength above bcrypt's 72 bytes",
    config: () => [["passwordLength", "100"]],
    message: () => invalid("passwordLength", '"100"', "must be a whole number from 16 to 72."),
  },
  {
    name: "bcryptCost below 4",
    config: () => [["bcryptCost", "3"]],
    message: () => invalid("bcryptCost", '"3"', "must be a whole number from 4 to 14."),
  },
  {
    name: "bcryptCost above 14",
    config: () => [["bcryptCost", "31"]],
    message: () => invalid("bcryptCost", '"31"', "must be a whole number from 4 to 14."),
  },
  {
    name: "rsaBits not a multiple of 1024",
    config: () => [["rsaBits", "3000"]],
    message: () => invalid("rsaBits", "3000", "must be a multiple of 1024."),
  },
  {
    name: "rsaBits below 2048",
    config: () => [["rsaBits", "1024"]],
    message: () => invalid("rsaBits", '"1024"', "must be a whole number from 2048 to 8192."),
  },
  {
    name: "keyAlgorithm unknown",
    config: () => [["keyAlgorithm", "DSA"]],
    message: () => invalid("keyAlgorithm", '"DSA"', 'must be "RSA" or "ECDSA".'),
  },
  {
    name: "caValidityDays 0",
    config: () => [["caValidityDays", "0"]],
    message: () => invalid("caValidityDays", '"0"', "must be a whole number from 1 to 36500."),
  },
  {
    name: "server certificate outliving the CA",
    config: () => [
      ["caValidityDays", "300"],
      ["serverCertValidityDays", "400"],
    ],
    message: () => invalid("serverCertValidityDays", "400", "must not exceed caValidityDays (300)."),
  },
  {
    name: "early renewal longer than validity",
    config: () => [["serverCertEarlyRenewalDays", "366"]],
    message: () => invalid("serverCertEarlyRenewalDays", "366", "must not exceed serverCertValidityDays (365)."),
  },
  {
    name: "validity in hours beyond the CA's",
    config: () => [
      ["caValidityDays", "1"],
      ["serverCertValidityHours", "25"],
      ["serverCertEarlyRenewalHours", "1"],
    ],
    message: () => invalid("serverCertValidityHours", "25", "must not exceed caValidityDays (1)."),
  },
  {
    name: "caAlsoTrust naming the signing CA",
    config: () => [["caAlsoTrust[0]", "1"]],
    message: () => invalid("caAlsoTrust", "1", "is caGeneration itself (1), which clients always trust."),
  },
  {
    name: "an IP address that is not one",
    config: () => [["ipAddresses[0]", "192.0.2.300"]],
    message: () => invalid("ipAddresses", '"192.0.2.300"', "is not an IPv4 or IPv6 address."),
  },
  {
    name: "the same IPv6 address spelled twice",
    config: () => [
      ["ipAddresses[0]", "::1"],
      ["ipAddresses[1]", "0::1"],
    ],
    message: () => invalid("ipAddresses", '"0::1"', 'is listed twice ("::1" is the same address).'),
  },
  {
    name: "an IPv4 address and its IPv4-mapped IPv6 form",
    config: () => [
      ["ipAddresses[0]", "192.0.2.10"],
      ["ipAddresses[1]", "::ffff:192.0.2.10"],
    ],
    message: () => invalid("ipAddresses", '"::ffff:192.0.2.10"', 'is listed twice ("192.0.2.10" is the same address).'),
  },
  {
    name: "no address and no name to dial",
    config: () => [
      ["ipAddresses", "[]"],
      ["dnsNames", "[]"],
    ],
    message: () => invalid("ipAddresses", "[]", "ipAddresses and dnsNames are both empty; clients need at least one address to dial."),
  },
  {
    name: "a DNS name with a leading hyphen",
    config: () => [["dnsNames[0]", "-bad-.example.com"]],
    message: () => invalid("dnsNames", '"-bad-.example.com"', "is not a valid DNS name."),
  },
  {
    name: "a DNS name ending in a dot",
    config: () => [["dnsNames[0]", "registry.example.com."]],
    message: () => invalid("dnsNames", '"registry.example.com."', "must not end with a dot."),
  },
  {
    name: "an IP address among the DNS names",
    config: () => [["dnsNames[0]", "192.0.2.10"]],
    message: () => invalid("dnsNames", '"192.0.2.10"', "is an IP address; put it in ipAddresses."),
  },
  {
    name: "the same DNS name in two cases",
    config: () => [
      ["dnsNames[0]", "Registry.Example.com"],
      ["dnsNames[1]", "registry.example.com"],
    ],
    message: () => invalid("dnsNames", '"registry.example.com"', 'is listed twice ("Registry.Example.com" is the same host name).'),
  },
  {
    name: "listenAddress a host name",
    config: () => [["listenAddress", "localhost"]],
    message: () => invalid("listenAddress", '"localhost"', "is not an IPv4 or IPv6 address."),
  },
  { name: "no users", config: () => [["users", "[]"]], message: () => invalid("users", "[]", "must name at least one user.") },
  {
    name: "a user name with a colon",
    config: () => [["users[0]", "ci:bot"]],
    message: () => invalid("users", '"ci:bot"', "is not a valid user name (letters, digits, '.', '_', '-'; no ':')."),
  },
  {
    name: "the same user in two cases",
    config: () => [
      ["users[0]", "ci"],
      ["users[1]", "CI"],
    ],
    message: () => invalid("users", '"CI"', 'is listed twice ("ci" is the same name).'),
  },
  {
    name: "a pull-only user who is not a user",
    config: () => [["pullOnlyUsers[0]", "ghost"]],
    message: () => invalid("pullOnlyUsers", '"ghost"', 'is not one of users ("admin").'),
  },
  {
    name: "an image reference with capitals",
    config: () => [["registryImage", "Registry:2"]],
    message: () => invalid("registryImage", '"Registry:2"', "is not a Docker image reference."),
  },
  {
    name: "an image reference with a space",
    config: () => [["nginxImage", "nginx 1.27"]],
    message: () => invalid("nginxImage", '"nginx 1.27"', "is not a Docker image reference."),
  },
  {
    name: "pullImages not a boolean",
    config: () => [["pullImages", "maybe"]],
    message: () => "configuration key 'pullImages' must be of type 'boolean'",
  },
  {
    name: "namePrefix not a Docker name",
    config: () => [["namePrefix", "bad prefix!"]],
    message: () => invalid("namePrefix", '"bad prefix!"', "must be a Docker name (letters, digits, '_', '.', '-', at most 63)."),
  },
  {
    name: "caCommonName blank",
    config: () => [["caCommonName", "   "]],
    message: () => invalid("caCommonName", '"   "', "must not be empty."),
  },
  {
    name: "an unknown setting",
    config: () => [["prot", "443"]],
    message: () => `${invalid("prot", '"[value hidden]"', "unknown setting;")}`,
  },
  {
    name: "a known setting in the wrong case",
    config: () => [["Port", "443"]],
    message: () => `${invalid("Port", '"[value hidden]"', "unknown setting (did you mean port?);")}`,
  },
  {
    name: "a private key pasted under an unknown key",
    config: () => [["sshKey", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAsecretbody\n-----END OPENSSH PRIVATE KEY-----", true]],
    message: () => `${invalid("sshKey", '"[value hidden]"', "unknown setting;")}`,
  },
  {
    name: "two problems at once",
    config: () => [
      ["port", "0"],
      ["users", "[]"],
    ],
    message: () =>
      `Invalid stack configuration:\n      ${invalid("port", '"0"', "must be a whole number from 1 to 65535.")}\n      ${invalid("users", "[]", "must name at least one user.")}`,
  },
  {
    name: "a mirror of a plain-HTTP upstream",
    config: () => [
      ["mirrors[0].upstream", "http://mirror.example.com"],
      ["mirrors[0].port", "5001"],
    ],
    message: () =>
      invalid("mirrors[0].upstream", '"http://mirror.example.com"', "must be the upstream registry's https://host[:port], without a path"),
  },
  {
    name: "a client host that is not a name",
    config: (f) => [
      ["clients[0].host", "bad host"],
      ["clients[0].privateKey", f.sshKey, true],
    ],
    message: () => invalid("clients[0].host", '"bad host"', "must be an IP address or DNS name."),
  },
  {
    name: "a client without a key",
    config: () => [["clients[0].host", "127.0.0.1"]],
    message: () => invalid("clients[0].privateKey", '"(missing)"', "must be a PEM private key"),
  },
  {
    name: "a client key that is not a key",
    config: () => [
      ["clients[0].host", "127.0.0.1"],
      ["clients[0].privateKey", "hunter2-not-a-key", true],
    ],
    message: () => invalid("clients[0].privateKey", '"[secret]"', "must be a PEM private key"),
  },
  {
    name: "a client port above 65535",
    config: (f) => [...client(0, 70000, f.sshKey)],
    message: () => invalid("clients[0].port", "70000", "must be a whole number from 1 to 65535."),
  },
  {
    name: "a client login name with a space",
    config: (f) => [...client(0, f.sshPort, f.sshKey, "bad user")],
    message: () => invalid("clients[0].user", '"bad user"', "is not a valid login name."),
  },
  {
    name: "a client sudo flag that is a word",
    config: (f) => [...client(0, f.sshPort, f.sshKey), ["clients[0].sudo", "yes"]],
    message: () => invalid("clients[0].sudo", '"yes"', "must be true or false."),
  },
  {
    name: "a misspelt client setting",
    config: (f) => [...client(0, f.sshPort, f.sshKey), ["clients[0].trustOS", "true"]],
    message: () => invalid("clients[0].trustOS", '"[value hidden]"', "unknown setting (did you mean trustOs?);"),
  },
  {
    name: "the same client host twice",
    config: (f) => [...client(0, f.sshPort, f.sshKey), ...client(1, f.sshPort, f.sshKey)],
    message: () => invalid("clients[1].host", '"127.0.0.1"', "the same host and port is listed twice."),
  },
];

/** Settings that are well-formed, refused by the pre-flight check of the Docker host and the client hosts. */
export const hostCases: BadConfigCase[] = [
  {
    name: "a port another program listens on",
    config: (f) => [...sound(f), ["port", String(f.busyPort)]],
    message: (f) => invalid("port", String(f.busyPort), "is already in use on 127.0.0.1 on the Docker host."),
  },
  {
    name: "a mirror's port another program listens on",
    config: (f) => [...sound(f), ["mirrors[0].upstream", "https://mirror.example.com"], ["mirrors[0].port", String(f.busyPort)]],
    message: (f) => invalid("mirrors[0].port", String(f.busyPort), "is already in use on 127.0.0.1 on the Docker host."),
  },
  {
    name: "a port another container publishes",
    config: (f) => [...sound(f), ["port", String(f.sshPort)]],
    message: (f) => invalid("port", String(f.sshPort), `is already published on the Docker host by container ${f.sshContainer}.`),
  },
  {
    name: "a listenAddress that is not the Docker host's",
    config: (f) => [...sound(f), ["listenAddress", "192.0.2.1"]],
    message: () => invalid("listenAddress", '"192.0.2.1"', "is not an address of the Docker host."),
  },
  {
    name: "a registry image that is not there, pullImages false",
    config: (f) => [...sound(f), ["registryImage", "private-registry/missing:1"]],
    message: () => invalid("registryImage", '"private-registry/missing:1"', "is not on the Docker host, and pullImages is false"),
  },
  {
    name: "an nginx image that is not there, pullImages false",
    config: (f) => [...sound(f), ["nginxImage", "private-registry/missing-nginx:1"]],
    message: () => invalid("nginxImage", '"private-registry/missing-nginx:1"', "is not on the Docker host, and pullImages is false"),
  },
  {
    name: "the registry image given as nginxImage",
    config: (f) => [...sound(f), ["nginxImage", LOCAL_REGISTRY_IMAGE]],
    message: () => invalid("nginxImage", JSON.stringify(LOCAL_REGISTRY_IMAGE), "is a registry image, not nginx (its command is "),
  },
  {
    name: "the nginx image given as registryImage",
    config: (f) => [...sound(f), ["registryImage", LOCAL_NGINX_IMAGE]],
    message: () => invalid("registryImage", JSON.stringify(LOCAL_NGINX_IMAGE), "is an nginx image, not a registry (its command is "),
  },
  {
    name: "a network name someone else has",
    config: (f) => [...sound(f), ["namePrefix", f.takenNetworkPrefix]],
    message: (f) =>
      invalid(
        "namePrefix",
        `"${f.takenNetworkPrefix}"`,
        `a Docker network named ${f.takenNetworkPrefix}-net already exists on the Docker host and belongs to no stack of this program`,
      ),
  },
  {
    name: "a volume name someone else has",
    config: (f) => [...sound(f), ["namePrefix", f.takenVolumePrefix]],
    message: (f) =>
      invalid(
        "namePrefix",
        `"${f.takenVolumePrefix}"`,
        `a Docker volume named ${f.takenVolumePrefix}-data already exists on the Docker host and belongs to no stack of this program; to use its data as this registry's, set adoptExistingVolume to true`,
      ),
  },
  {
    name: "a container name someone else has",
    config: (f) => [...sound(f), ["namePrefix", f.takenContainerPrefix]],
    message: (f) =>
      invalid(
        "namePrefix",
        `"${f.takenContainerPrefix}"`,
        `a Docker container named ${f.takenContainerPrefix}-registry already exists on the Docker host and belongs to no stack of this program`,
      ),
  },
  {
    name: "a client host that refuses the connection",
    config: (f) => [...sound(f), ...client(0, f.refusedPort, f.sshKey)],
    message: (f) =>
      invalid(
        "clients[0].host",
        '"127.0.0.1"',
        `cannot log in over SSH with the configured key as root on port ${f.refusedPort} (ssh: connect to host 127.0.0.1 port ${f.refusedPort}: Connection refused).`,
      ),
  },
  {
    name: "a client host that refuses the key",
    config: (f) => [...sound(f), ...client(0, f.sshPort, f.otherKey)],
    message: (f) =>
      invalid(
        "clients[0].host",
        '"127.0.0.1"',
        `cannot log in over SSH with the configured key as root on port ${f.sshPort} (root@127.0.0.1: Permission denied (publickey).`,
      ),
  },
  {
    name: "a client host that accepts TCP and never speaks SSH",
    config: (f) => [...sound(f), ...client(0, f.silentPort, f.sshKey)],
    message: (f) =>
      invalid("clients[0].host", '"127.0.0.1"', `cannot log in over SSH with the configured key as root on port ${f.silentPort} (`),
  },
  {
    name: "a client login without passwordless sudo",
    config: (f) => [...sound(f), ...client(0, f.sshPort, f.sshKey, f.noSudoUser), ["clients[0].sudo", "true"]],
    message: (f) =>
      invalid("clients[0].host", '"127.0.0.1"', `passwordless sudo (sudo -n) does not work as ${f.noSudoUser} on port ${f.sshPort} (`),
  },
  {
    name: "a good client host and a bad one",
    config: (f) => [...sound(f), ...client(0, f.sshPort, f.sshKey), ...client(1, f.refusedPort, f.sshKey)],
    message: (f) =>
      invalid(
        "clients[1].host",
        '"127.0.0.1"',
        `cannot log in over SSH with the configured key as root on port ${f.refusedPort} (ssh: connect to host 127.0.0.1 port ${f.refusedPort}: Connection refused).`,
      ),
  },
];
