// Renders the TLS proxy's nginx.conf. Based on the distribution project's nginx
// recipe, with a modern TLS policy. nginx reaches the registry on a unix socket in a
// volume the two share: a fixed address, so a kept-alive upstream, and no network
// path to the registry for anything else.

import { USERS_DIRECTORY } from "./usersDirectory";

export interface NginxConfInput {
  /** Names and addresses the certificate covers; used as server_name. */
  serverNames: string[];
  /** Where the registry listens, as nginx's `server` names it: `unix:/path/to.sock`, or host:port. */
  upstream: string;
  /** Port nginx listens on inside its container. */
  listenPort: number;
  certificatePath: string;
  privateKeyPath: string;
  /**
   * The users directory (lib/usersDirectory.ts): its htpasswd checks every request, and
   * a request gets through only if the user has one of the files in its rights/ that the
   * request needs (its project, pull or push, a mount's source); 403 for the others.
   */
  usersDirectory: string;
  /**
   * Mutual TLS: a client must present a certificate from the CAs in caPath, and only
   * the certificates whose SHA-1 fingerprints (lower-case hex, as nginx's
   * $ssl_client_fingerprint) are listed get further (one per client host).
   */
  clientCertificates?: { caPath: string; allowedFingerprints: string[] };
  /**
   * The registry browser (docs/ui.md): its static files in `directory`, served under /ui/
   * to the same users as /v2/, and /ui/session.json, which tells the page who is logged
   * in, whether that user may push (the same may-push file /v2/ looks up), whether the
   * registry deletes, and the endpoints for its `docker pull` lines. Omitted: no /ui/.
   */
  ui?: { directory: string; deleteEnabled: boolean; endpoints: string[] };
  /**
   * Metrics for scraping, behind the same basic auth: nginx's stub_status at
   * /metrics/nginx and, at /metrics/registry, the file the registry's health check copies
   * its Prometheus page to (`registryFile`). Omitted: neither.
   */
  metrics?: { registryFile: string };
  /**
   * Pull-through mirrors: each a server on a port of its own, with the same certificate
   * (and client certificates), in front of a registry in proxy mode. Reads only: a
   * push gets 405 with a Docker error that says so.
   */
  mirrors?: NginxMirror[];
  /**
   * The swarm layout (docs/swarm.md): the registry's replicas are found by name through
   * Docker's DNS on every request (`upstream` is then `tasks.<service>:port`: one address
   * per healthy replica, re-resolved every second), a request that cannot connect to one
   * replica goes to the next, and connections arrive from the edge with the PROXY protocol,
   * so that the client's own address counts (failed logins, the log).
   */
  swarm?: { resolver: string; proxyProtocolFrom: string[] };
  pidPath?: string;
  /** Defaults to the container's stdout, where `docker logs` reads it. */
  accessLogPath?: string;
}

export interface NginxMirror {
  /** What clients call the upstream (`docker.io`), for messages. */
  name: string;
  /** Port nginx listens on for it inside its container. */
  listenPort: number;
  /** Where its registry listens, as nginx's `server` names it. */
  upstream: string;
  /**
   * Who may pull: the htpasswd users (as on the registry's port), the client certificate
   * alone (mutual TLS: Docker daemons send no password to a mirror), or anyone.
   */
  access: "users" | "certificate" | "anyone";
}

// Mozilla "intermediate" ciphers for TLS 1.2; TLS 1.3 suites are fixed by OpenSSL.
export const INTERMEDIATE_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256",
  "DHE-RSA-AES256-GCM-SHA384",
  "DHE-RSA-CHACHA20-POLY1305",
].join(":");

/**
 * Failed logins (a wrong password or an unknown user, with credentials sent) per
 * client address: this many per second on average, the first AUTH_FAILURE_NO_DELAY
 * beyond that answered at once, the next ones held back to the rate, and beyond
 * AUTH_FAILURE_BURST refused with 429. Valid requests and credential-less ones
 * (Docker's first probe) are never counted.
 */
export const AUTH_FAILURE_RATE_PER_SECOND = 5;
export const AUTH_FAILURE_NO_DELAY = 10;
export const AUTH_FAILURE_BURST = 100;

/** distribution's grammar of a repository name's component, in nginx's regexes: a project. */
const PROJECT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;

/** A query key Go decodes to "from": each letter as is or %-encoded (hex digits in either case). */
const FROM_KEY = "(?:f|%66)(?:r|%72)(?:o|%6[Ff])(?:m|%6[Dd])";

/** The browser's headers: nothing from another origin, no framing, no sniffing, no referrer, no caching. */
export const UI_CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
export const UI_HEADERS: readonly (readonly [string, string])[] = [
  ["Content-Security-Policy", UI_CONTENT_SECURITY_POLICY],
  ["X-Content-Type-Options", "nosniff"],
  ["X-Frame-Options", "DENY"],
  ["Referrer-Policy", "no-referrer"],
  ["Cache-Control", "no-store"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
  ["Cross-Origin-Resource-Policy", "same-origin"],
];
/** Where the page asks who it is serving. */
export const UI_SESSION_PATH = "/ui/session.json";
export const METRICS_PATHS = { nginx: "/metrics/nginx", registry: "/metrics/registry" } as const;

/** What /ui/session.json says; `user` and `mayPush` are filled in by nginx per request. */
export function uiSessionTemplate(deleteEnabled: boolean, endpoints: string[]): string {
  // nginx variables in a single-quoted string; endpoints hold no quote, backslash or "$".
  for (const e of endpoints) if (/['"\\$\s]/.test(e)) throw new Error(`endpoint ${JSON.stringify(e)} cannot be written into nginx.conf`);
  return `{"user":"$remote_user","mayPush":$ui_may_push,"deleteEnabled":${deleteEnabled},"endpoints":${JSON.stringify(endpoints)}}`;
}

export function renderNginxConf(input: NginxConfInput): string {
  const RIGHTS = USERS_DIRECTORY.rights;
  const ALL = USERS_DIRECTORY.allProjects;
  const serverNames = input.serverNames.map((n) => (n.includes(":") ? `"[${n}]"` : n)).join(" ");
  const mtls = input.clientCertificates;
  const clientCertMap = !mtls
    ? ""
    : `  # Client certificates allowed in: one per client host in the config. A host removed
  # from it keeps a certificate the CA signed, and is refused here (403).
  map $ssl_client_fingerprint $client_certificate_allowed {
    default 0;
${mtls.allowedFingerprints.map((fp) => `    "${fp}" 1;`).join("\n")}
  }

`;
  const clientCertTls = !mtls
    ? ""
    : `
    # Mutual TLS: no request without a certificate from the registry's CA.
    ssl_client_certificate ${mtls.caPath};
    ssl_verify_client on;
    ssl_verify_depth 1;
`;
  const clientCertCheck = !mtls
    ? ""
    : `
      if ($client_certificate_allowed = 0) {
        return 403 '{"errors":[{"code":"DENIED","message":"this client certificate is not allowed"}]}';
      }
`;
  const tls = `    ssl_certificate ${input.certificatePath};
    ssl_certificate_key ${input.privateKeyPath};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ${INTERMEDIATE_CIPHERS};
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:RegistryTLS:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;
${clientCertTls}`;
  const authFailed = `    # A failed login, after auth_basic refused it (its WWW-Authenticate header is kept).
    # limit_req runs here, after the fact, because stock nginx cannot know a password
    # is wrong before checking it: a client that waits for its answers (a guesser,
    # a flood on kept-alive connections) is slowed to the rate, and so is the CPU
    # its bcrypt checks take; past the burst it gets 429 at once.
    location @auth_failed {
      limit_req zone=auth_failures burst=${AUTH_FAILURE_BURST} delay=${AUTH_FAILURE_NO_DELAY};
      limit_req_status 429;
      # Refusals at warn, the (many) delays at notice, which error_log warn drops.
      limit_req_log_level warn;
      add_header 'Docker-Distribution-Api-Version' 'registry/2.0' always;
      # The answer is made in the content phase, after limit_req: "return" would run
      # before it (rewrite phase) and skip the limit. Nothing exists under this root.
      root /nonexistent;
      try_files /nothing =401;
    }
`;
  const mirrors = (input.mirrors ?? [])
    .map((m, i) => renderMirrorServer(m, i, input, serverNames, tls, authFailed, clientCertCheck))
    .join("");
  const mirrorMap =
    (input.mirrors ?? []).length === 0
      ? ""
      : `
  # On a mirror's port reads pass (the file always exists) and anything else goes to
  # the mirror's read-only answer, after the login like every other refusal.
  map $request_method $mirror_read_file {
    GET /${USERS_DIRECTORY.htpasswd};
    HEAD /${USERS_DIRECTORY.htpasswd};
    default /read-only-mirror;
  }
`;
  return `# Rendered by the private-registry Pulumi program; changes here are overwritten.
worker_processes auto;
pid ${input.pidPath ?? "/var/run/nginx.pid"};
error_log stderr warn;

events {
  worker_connections 1024;
}

http {
  server_tokens off;
  access_log ${input.accessLogPath ?? "/dev/stdout"};
  sendfile on;

  # The registry sends this header itself; nginx adds it where it does not
  # answer (the 401 of auth_basic), since docker login needs it on every answer.
  map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {
    '' 'registry/2.0';
  }

  # Failed logins are counted per client address, only when credentials were sent:
  # an empty key is never counted (Docker's credential-less first probe, valid users).
  map $http_authorization $auth_failure_key {
    '' '';
    default $binary_remote_addr;
  }
  limit_req_zone $auth_failure_key zone=auth_failures:1m rate=${AUTH_FAILURE_RATE_PER_SECOND}r/s;

${clientCertMap}${
    input.swarm
      ? `  # The registry's replicas: Docker's DNS names one address per running replica; asked
  # again every second, so a replica that starts or stops is seen within a second.
  resolver ${input.swarm.resolver} valid=1s ipv6=off;
  resolver_timeout 2s;
`
      : `  # Connections to the registry are kept open and reused (HTTP/1.1 below).
  upstream registry_upstream {
    server ${input.upstream};
    keepalive 32;
  }
`
  }
  # Rights per project, after the password: what a request needs is a file in the users
  # directory's rights/ (lib/usersDirectory.ts), looked up on every request like the
  # htpasswd, so a rights change needs no reload. Reads need "pull", anything else "push".
  map $request_method $registry_need {
    GET pull;
    HEAD pull;
    default push;
  }

  # The project: the first component of the repository name, read from the path as the
  # client sent it ($request_uri, which is what the registry gets), never from nginx's
  # decoded $uri. A path with anything else in it (%-encoding, "." or "..", "//",
  # upper case) is _invalid: only users with rights on every project get it through.
  map $request_uri $registry_project {
    "~^/v2/(?:\\?.*)?$" _base;
    "~^/v2/_catalog(?:\\?.*)?$" _catalog;
    "~^/v2/(?<registry_path_project>${PROJECT})(?:/(?!\\.\\.?(?:/|\\?|$))[A-Za-z0-9_.:-]+)+/?(?:\\?.*)?$" $registry_path_project;
    default _invalid;
  }

  # A blob mount (POST .../blobs/uploads/?mount=...&from=other/repo) reads the "from"
  # repository: its project. The registry reads the query as Go does (keys and values
  # %-decoded, the first of several), so a POST whose query has a key Go reads as "from"
  # is checked only when plainly spelled: digest=, mount= and from= alone, from= once;
  # anything else is _invalid. Its body cannot carry one: a POST's Content-Type is set to
  # application/octet-stream below (Go's FormValue reads a form body before the query).
  map "$request_method $args" $registry_from {
    "~^(?!POST )" _none;
    "~^POST (?!(?:.*[&;])?${FROM_KEY}(?:[=&;]|$))" _none;
    "~^POST (?!(?:[^&]*&)*from=[^&]*&(?:[^&]*&)*from=)(?=(?:[^&]*&)*from=(?<registry_from_project>${PROJECT})(?:%2[Ff]|/|&|$))(?:digest|mount|from)=[A-Za-z0-9._:%/-]*(?:&(?:digest|mount|from)=[A-Za-z0-9._:%/-]*)*$" $registry_from_project;
    default _invalid;
  }

  # The files that let a request through (any one of them), from "need:project:from".
  # The writer makes <user>/<project>/pull (and /push), <user>/_all/... for "*", and
  # <user>/<target>/mount-from/<source> for every project pair a mount may join.
  map "$registry_need:$registry_project:$registry_from" $registry_right_project {
    "pull:_base:_none" /${USERS_DIRECTORY.htpasswd};
    "~^(?<registry_r1_need>pull|push):(?<registry_r1_project>[^:]+):_none$" /${RIGHTS}/$remote_user/$registry_r1_project/$registry_r1_need;
    "~^push:(?<registry_r1_target>[^:]+):(?<registry_r1_from>[^:]+)$" /${RIGHTS}/$remote_user/$registry_r1_target/mount-from/$registry_r1_from;
    default /${RIGHTS}/.none;
  }
  map "$registry_need:$registry_project:$registry_from" $registry_right_all {
    "~^(?<registry_r2_need>pull|push):[^:]+:_none$" /${RIGHTS}/$remote_user/${ALL}/$registry_r2_need;
    "~^push:(?<registry_r2_target>[^:]+):[^:]+$" /${RIGHTS}/$remote_user/$registry_r2_target/mount-from/${ALL};
    default /${RIGHTS}/.none;
  }
  map "$registry_need:$registry_project:$registry_from" $registry_right_mount_all {
    "~:_none$" /${RIGHTS}/.none;
    "~^push:[^:]+:(?<registry_r3_from>[^:]+)$" /${RIGHTS}/$remote_user/${ALL}/mount-from/$registry_r3_from;
    default /${RIGHTS}/.none;
  }
  map "$registry_need:$registry_project:$registry_from" $registry_right_mount_any {
    "~:_none$" /${RIGHTS}/.none;
    "~^push:" /${RIGHTS}/$remote_user/${ALL}/mount-from/${ALL};
    default /${RIGHTS}/.none;
  }

  # What Docker prints after "denied: " when none of them exists.
  map "$registry_need:$registry_project:$registry_from" $registry_denied_message {
    "~^[^:]+:_catalog:" "the catalog lists every project: only a user who may pull from every project may read it";
    "~^[^:]+:_invalid:" "not a repository path whose project this registry can check";
    "~^[^:]+:_base:" "this user may not push";
    "~^[^:]+:[^:]+:_invalid$" "a blob mount whose source this registry cannot check (it takes digest=, mount= and one from=, plainly spelled)";
    "~^pull:(?<registry_m_pull>[^:]+):_none$" "this user may not pull from project $registry_m_pull";
    "~^push:(?<registry_m_push>[^:]+):_none$" "this user may not push to project $registry_m_push";
    "~^push:(?<registry_m_target>[^:]+):(?<registry_m_from>[^:]+)$" "this user may not push to project $registry_m_target or may not pull from project $registry_m_from (the source of the blob mount)";
    default "access denied";
  }

  # A POST (starting an upload, or a mount) carries no form the registry would read from=
  # in: Go's FormValue reads a form body before the query.
  map $request_method $registry_content_type {
    POST application/octet-stream;
    default $http_content_type;
  }
${mirrorMap}
  server {
    listen ${input.listenPort} ssl${input.swarm ? " proxy_protocol" : ""};
    server_name ${serverNames};
${
  input.swarm
    ? `    # The edge passes each connection on with the client's address (PROXY protocol).
${input.swarm.proxyProtocolFrom.map((cidr) => `    set_real_ip_from ${cidr};\n`).join("")}    real_ip_header proxy_protocol;
`
    : ""
}
${tls}
    # Layers can be large and are sent chunked: no 413, no 411. Uploads are relayed to
    # the registry as they arrive, in pieces of up to 1 MiB (nginx's default, 16k, makes a
    # 100 KiB layer several writes): docs/benchmarks.md.
    client_max_body_size 0;
    client_body_buffer_size 1m;
    chunked_transfer_encoding on;

    location /v2/ {
      # Docker 1.5 and older, and bare Go clients, mishandle the registry's auth.
      if ($http_user_agent ~ "^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$") {
        return 404;
      }
${clientCertCheck}
      auth_basic "Registry realm";
      auth_basic_user_file ${input.usersDirectory}/${USERS_DIRECTORY.htpasswd};
      # nginx's own 401 only (the registry's answers are not intercepted): counted below.
      error_page 401 = @auth_failed;
      add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;

      # After the password (try_files runs after the access phase): the user's rights on
      # the project (maps above), else @registry_denied. The request URI is passed as the
      # client sent it ($request_uri): try_files rewrote $uri to the file it found.
      root ${input.usersDirectory};
      try_files $registry_right_project $registry_right_all $registry_right_mount_all $registry_right_mount_any @registry_denied;
${
  input.swarm
    ? `      # A name in proxy_pass: resolved at request time. A replica that refuses or does not
      # answer the connection (stopping, or on a node that is down) gets no request: the next
      # one does; the request never reached the first, so a retried upload is safe.
      proxy_pass http://${input.upstream}$request_uri;
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout non_idempotent;
      proxy_next_upstream_tries 3;
`
    : `      proxy_pass http://registry_upstream$request_uri;
`
}      proxy_set_header Content-Type $registry_content_type;
      # HTTP/1.1 to the registry: with HTTP/1.0 nginx buffers a chunked upload in
      # full whatever proxy_request_buffering says. No "Connection: close" either.
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Real-IP $remote_addr;
      # Replace, never append: a client-supplied X-Forwarded-For would reach the registry's log.
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 900;
      proxy_request_buffering off;
      # Pulls: buffered in memory (never on disk) so that the registry's answer flows at
      # its own pace; measured here, a 1 GiB pull went from 41 to 73 MiB/s (docs/benchmarks.md).
      proxy_buffering on;
      proxy_buffers 16 64k;
      proxy_busy_buffers_size 128k;
      proxy_max_temp_file_size 0;
    }

${input.ui ? uiLocations(input.ui, input.usersDirectory, clientCertCheck) : ""}${input.metrics ? metricsLocations(input.metrics, input.usersDirectory, clientCertCheck) : ""}    location / {
      return 404;
    }

${authFailed}
    # What Docker prints for it: "denied: this user may only pull" for a pull-only user
    # (pullOnlyUsers), else why the user's rights per project do not let it through.
    # Reached only from try_files, after the password: "if" tests the user's files here.
    location @registry_denied {
      root ${input.usersDirectory};
      default_type application/json;
      add_header 'Docker-Distribution-Api-Version' 'registry/2.0' always;
      if (-f $document_root/${RIGHTS}/$remote_user/${USERS_DIRECTORY.pullOnlyMarker}) {
        return 403 '{"errors":[{"code":"DENIED","message":"this user may only pull"}]}';
      }
      return 403 '{"errors":[{"code":"DENIED","message":"$registry_denied_message"}]}';
    }
  }
${mirrors}}
`;
}

/** One mirror's server: same TLS and client certificates, reads only, its own registry upstream. */
function renderMirrorServer(
  m: NginxMirror,
  index: number,
  input: NginxConfInput,
  serverNames: string,
  tls: string,
  authFailed: string,
  clientCertCheck: string,
): string {
  const name = `mirror_${index}`;
  const auth =
    m.access === "users"
      ? `      auth_basic "Registry realm";
      auth_basic_user_file ${input.usersDirectory}/${USERS_DIRECTORY.htpasswd};
      error_page 401 = @auth_failed;
`
      : m.access === "certificate"
        ? "      # The client certificate is the login (Docker daemons send no password to a mirror).\n"
        : "      # anonymousPull: no login; reads only.\n";
  const message = JSON.stringify(`this is a read-only mirror of ${m.name}: pushes go to the registry itself`).slice(1, -1);
  return `
  # Pull-through mirror of ${m.name}.
  upstream ${name} {
    server ${m.upstream};
    keepalive 16;
  }

  server {
    listen ${m.listenPort} ssl;
    server_name ${serverNames};

${tls}
    client_max_body_size 1m;

    location /v2/ {
      if ($http_user_agent ~ "^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$") {
        return 404;
      }
${clientCertCheck}${auth}      add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;

      root ${input.usersDirectory};
      try_files $mirror_read_file @${name}_read_only;
      proxy_pass http://${name}$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      # A cold pull waits for the upstream.
      proxy_read_timeout 900;
      proxy_buffering on;
      proxy_buffers 16 64k;
      proxy_busy_buffers_size 128k;
      proxy_max_temp_file_size 0;
    }

    location / {
      return 404;
    }

${authFailed}
    # What Docker prints for a push here: "unsupported: this is a read-only mirror of ...".
    location @${name}_read_only {
      default_type application/json;
      add_header 'Docker-Distribution-Api-Version' 'registry/2.0' always;
      return 405 '{"errors":[{"code":"UNSUPPORTED","message":"${message}"}]}';
    }
  }
`;
}

/**
 * auth_basic as /v2/ has it: the same htpasswd, the same failed-login limit and, with mutual
 * TLS, the same allow list of client certificates (before the password, as there). These pages are
 * read only: their content handlers (static files, stub_status, @ui_session) answer anything
 * but GET and HEAD with 405, after the password (limit_except would answer 403 before it).
 */
function basicAuth(usersDirectory: string, clientCertCheck: string): string {
  return `${clientCertCheck.replace(/^\n/, "")}      auth_basic "Registry realm";
      auth_basic_user_file ${usersDirectory}/${USERS_DIRECTORY.htpasswd};
      error_page 401 = @auth_failed;
`;
}

function uiLocations(ui: NonNullable<NginxConfInput["ui"]>, usersDirectory: string, clientCertCheck: string): string {
  const headers = UI_HEADERS.map(([name, value]) => `      add_header ${name} "${value}" always;\n`).join("");
  return `    # The registry browser (docs/ui.md): static files, the same users and passwords as /v2/.
    # The page calls /v2/ itself, on this origin; its writes meet /v2/'s may-push check.
    location = /ui {
      absolute_redirect off;
      return 301 /ui/;
    }
    location /ui/ {
${basicAuth(usersDirectory, clientCertCheck)}${headers}      alias ${ui.directory}/;
      index index.html;
      # No mime.types is included: the page's own types (nosniff makes a browser refuse a
      # script or style sheet of another type).
      types {
        text/html html;
        text/css css;
        application/javascript js;
        image/png png;
      }
      default_type application/octet-stream;
      charset utf-8;
      charset_types text/css application/javascript;
    }
    # Who the page serves: the user, whether they may push (the may-push file /v2/ looks
    # up), whether the registry deletes, and the endpoints. Made after the password: the
    # content comes from the named location try_files passes to (a "return" here would
    # answer in the rewrite phase, before auth_basic).
    location = ${UI_SESSION_PATH} {
${basicAuth(usersDirectory, clientCertCheck)}      root /nonexistent;
      try_files /nothing @ui_session;
    }
    location @ui_session {
${headers}      default_type application/json;
      if ($request_method !~ ^(GET|HEAD)$) {
        return 405;
      }
      set $ui_may_push false;
      if (-f ${usersDirectory}/${USERS_DIRECTORY.mayPush}/$remote_user) {
        set $ui_may_push true;
      }
      return 200 '${uiSessionTemplate(ui.deleteEnabled, ui.endpoints)}';
    }

`;
}

function metricsLocations(metrics: NonNullable<NginxConfInput["metrics"]>, usersDirectory: string, clientCertCheck: string): string {
  return `    # Metrics for scraping (docs/ui.md#metrics), behind the same basic auth.
    location = ${METRICS_PATHS.nginx} {
${basicAuth(usersDirectory, clientCertCheck)}      add_header Cache-Control "no-store" always;
      stub_status;
    }
    # The registry's Prometheus page, as its health check last copied it (every 3 s).
    location = ${METRICS_PATHS.registry} {
${basicAuth(usersDirectory, clientCertCheck)}      add_header Cache-Control "no-store" always;
      default_type "text/plain; version=0.0.4; charset=utf-8";
      alias ${metrics.registryFile};
    }

`;
}
