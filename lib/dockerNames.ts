/**
 * The Docker objects a stack makes, named from its namePrefix: one place, so that
 * the components that create them and the pre-flight check that looks for them
 * can never disagree.
 */
export function dockerNames(namePrefix: string) {
  return {
    network: `${namePrefix}-net`,
    volume: `${namePrefix}-data`,
    registryContainer: `${namePrefix}-registry`,
    proxyContainer: `${namePrefix}-nginx`,
    /** The proxy layout's users (htpasswd, push rights), and the one-shot container that writes them. */
    usersVolume: `${namePrefix}-users`,
    usersWriterContainer: `${namePrefix}-users-writer`,
    /** The proxy layout's unix socket between nginx and the registry. */
    socketVolume: `${namePrefix}-socket`,
  };
}
