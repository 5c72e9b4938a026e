// The registry browser: plain JavaScript, no framework, no build step, nothing from
// another origin. It reads the registry's own API (/v2/) on the origin that serves it,
// with the credentials the browser already holds for it (basic auth, asked by the
// browser itself): nothing is kept in storage, nothing goes into a URL but the
// repository shown (in the fragment, never sent). /ui/session.json (made by nginx)
// says who is signed in, whether that user may push, whether the registry deletes, and
// the endpoints for the `docker pull` lines. See docs/ui.md.
"use strict";

(() => {
  const INDEX_TYPES = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
  const IMAGE_TYPES = ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];
  const ACCEPT = [...INDEX_TYPES, ...IMAGE_TYPES].join(", ");
  const params = new URLSearchParams(window.location.search);
  const PAGE_SIZE = Math.min(Math.max(parseInt(params.get("n") || "", 10) || 100, 1), 1000);
  // Manifest details fetched at once (each tag costs a few requests).
  const PARALLEL = 4;

  const $ = (id) => document.getElementById(id);
  let session = { user: "", mayPush: false, deleteEnabled: false, endpoints: [] };
  let repository = "";
  let tagsNext = "";
  let catalogNext = "";

  /** An element with text (never HTML) and attributes. */
  function el(tag, text, attrs = {}) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  class ApiError extends Error {}

  /** A same-origin request to the registry API; throws with what the registry said. */
  async function api(path, init = {}) {
    const res = await fetch(path, { credentials: "same-origin", cache: "no-store", redirect: "error", ...init });
    if (!res.ok) {
      let detail = "";
      try {
        const body = await res.json();
        detail = (body.errors || []).map((e) => `${e.code}: ${e.message}`).join("; ");
      } catch {
        // not JSON
      }
      if (res.status === 401) throw new ApiError("Not signed in (401): reload the page to log in again.");
      throw new ApiError(`${init.method || "GET"} ${path}: ${res.status}${detail ? ` (${detail})` : ""}`);
    }
    return res;
  }

  /** The next page's path from a Link header (`</v2/...>; rel="next"`), on this origin only. */
  function nextLink(res) {
    const link = res.headers.get("Link") || "";
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
    if (!m) return "";
    const url = new URL(m[1], window.location.origin);
    return url.origin === window.location.origin && url.pathname.startsWith("/v2/") ? url.pathname + url.search : "";
  }

  function formatBytes(n) {
    if (!Number.isFinite(n)) return "?";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime())
      ? iso
      : d
          .toISOString()
          .replace("T", " ")
          .replace(/\.\d+Z$|Z$/, " UTC");
  }

  const platformName = (p) => (p ? [p.os, p.architecture, p.variant].filter(Boolean).join("/") : "");

  // --- session -----------------------------------------------------------------

  async function loadSession() {
    const res = await api("session.json");
    session = await res.json();
    const rights = session.mayPush ? "may push" : "pull only";
    const deletes = session.deleteEnabled ? "deleting enabled" : "deleting disabled on this registry";
    $("session").textContent = `Signed in as ${session.user} · ${rights} · ${deletes}`;
    document.body.dataset.mayDelete = String(canDelete());
  }

  const canDelete = () => session.mayPush === true && session.deleteEnabled === true;

  // --- repositories -------------------------------------------------------------

  async function loadCatalog(path) {
    const res = await api(path);
    const body = await res.json();
    catalogNext = nextLink(res);
    const list = $("repositories");
    list.replaceChildren();
    for (const name of body.repositories || []) {
      const item = el("li", null, { "data-repository": name });
      const link = el("a", name, { href: `#repository=${encodeURIComponent(name)}` });
      item.append(link);
      list.append(item);
    }
    $("no-repositories").hidden = list.children.length > 0;
    $("repositories-next").hidden = !catalogNext;
    $("repositories-first").hidden = !path.includes("last=");
  }

  // --- tags ---------------------------------------------------------------------

  async function manifest(name, reference) {
    const res = await api(`/v2/${name}/manifests/${reference}`, { headers: { Accept: ACCEPT } });
    const digest = res.headers.get("Docker-Content-Digest") || "";
    const body = await res.json();
    const type = body.mediaType || (res.headers.get("Content-Type") || "").split(";")[0];
    return { digest, body, type };
  }

  async function config(name, digest) {
    const res = await api(`/v2/${name}/blobs/${digest}`);
    return res.json();
  }

  const layerBytes = (image) => (image.layers || []).reduce((sum, l) => sum + (l.size || 0), 0);

  /** What a tag's row shows: digest, platforms with their sizes, created. */
  async function describe(name, tag) {
    const top = await manifest(name, encodeURIComponent(tag));
    if (INDEX_TYPES.includes(top.type) || Array.isArray(top.body.manifests)) {
      // An index: one image per platform (attestations left out), each with its own size.
      const children = (top.body.manifests || []).filter(
        (m) => !(m.annotations && m.annotations["vnd.docker.reference.type"] === "attestation-manifest"),
      );
      const images = [];
      let created = "";
      for (const child of children) {
        const image = await manifest(name, child.digest);
        if (!created && image.body.config) created = (await config(name, image.body.config.digest)).created || "";
        images.push({ platform: platformName(child.platform) || "unknown", size: layerBytes(image.body) });
      }
      return { digest: top.digest, images, created };
    }
    const cfg = top.body.config ? await config(name, top.body.config.digest) : {};
    return {
      digest: top.digest,
      images: [{ platform: platformName(cfg) || "unknown", size: layerBytes(top.body) }],
      created: cfg.created || "",
    };
  }

  function row(name, tag) {
    const tr = el("tr", null, { "data-tag": tag });
    tr.append(el("td", tag, { class: "tag" }));
    for (const cls of ["digest", "platforms", "size", "created", "pull"]) tr.append(el("td", cls === "digest" ? "…" : "", { class: cls }));
    tr.append(el("td", null, { class: "actions" }));
    return tr;
  }

  function fill(tr, name, tag, info) {
    const cells = (cls) => tr.querySelector(`td.${cls}`);
    tr.dataset.digest = info.digest;
    const total = info.images.reduce((s, i) => s + i.size, 0);
    tr.dataset.size = String(total);
    tr.dataset.platforms = info.images.map((i) => i.platform).join(",");
    tr.dataset.created = info.created;
    const digest = el("code", `${info.digest.slice(0, 19)}…`, { title: info.digest });
    cells("digest").replaceChildren(digest);
    cells("platforms").replaceChildren(...info.images.map((i) => el("div", i.platform)));
    cells("size").replaceChildren(
      ...(info.images.length === 1
        ? [el("span", formatBytes(total), { title: `${total} bytes` })]
        : info.images.map((i) => el("div", formatBytes(i.size), { title: `${i.size} bytes` }))),
    );
    cells("created").textContent = formatTime(info.created);
    cells("pull").replaceChildren(...session.endpoints.map((e) => el("code", `docker pull ${e}/${name}:${tag}`, { class: "pull-line" })));
    if (canDelete()) {
      const button = el("button", "Delete", { type: "button", class: "danger delete" });
      button.addEventListener("click", () => confirmDelete(name, tag, info.digest));
      cells("actions").replaceChildren(button);
    }
  }

  async function loadTags(name, path) {
    const res = await api(path);
    const body = await res.json();
    tagsNext = nextLink(res);
    const tbody = $("tags").querySelector("tbody");
    const tags = body.tags || [];
    const rows = tags.map((tag) => {
      const tr = row(name, tag);
      tbody.append(tr);
      return [tr, tag];
    });
    $("no-tags").hidden = tbody.children.length > 0;
    $("tags-next").hidden = !tagsNext;
    // A few at a time; each row says when it failed.
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const [tr, tag] = rows[next++];
        try {
          fill(tr, name, tag, await describe(name, tag));
        } catch (e) {
          tr.querySelector("td.digest").textContent = e.message;
          tr.classList.add("failed");
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    document.body.dataset.tagsLoaded = name;
  }

  async function showRepository(name) {
    repository = name;
    document.body.dataset.tagsLoaded = "";
    $("tags-section").hidden = !name;
    if (!name) return;
    $("repository-name").textContent = name;
    for (const a of $("repositories").querySelectorAll("a")) {
      if (a.parentElement.dataset.repository === name) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    }
    $("tags").querySelector("tbody").replaceChildren();
    await loadTags(name, `/v2/${name}/tags/list?n=${PAGE_SIZE}`);
  }

  // --- delete -------------------------------------------------------------------

  let pending = null;

  function confirmDelete(name, tag, digest) {
    const sharing = [...$("tags").querySelectorAll("tbody tr")].filter((tr) => tr.dataset.digest === digest).map((tr) => tr.dataset.tag);
    pending = { name, digest };
    $("delete-what").textContent = `${name}:${tag}`;
    $("delete-digest").textContent = digest;
    $("delete-tags").textContent = sharing.join(", ");
    $("confirm-delete").showModal();
  }

  async function deleteConfirmed() {
    const target = pending;
    pending = null;
    $("confirm-delete").close();
    if (!target) return;
    try {
      await api(`/v2/${target.name}/manifests/${target.digest}`, { method: "DELETE" });
      showError("");
      await showRepository(target.name);
    } catch (e) {
      showError(e.message);
    }
  }

  // --- start --------------------------------------------------------------------

  const fromHash = () => {
    const m = /^#repository=(.+)$/.exec(window.location.hash);
    return m ? decodeURIComponent(m[1]) : "";
  };

  async function guarded(work) {
    try {
      await work();
    } catch (e) {
      showError(e.message);
    }
  }

  window.addEventListener("DOMContentLoaded", () => {
    $("repositories-next").addEventListener("click", () => guarded(() => loadCatalog(catalogNext)));
    $("repositories-first").addEventListener("click", () => guarded(() => loadCatalog(`/v2/_catalog?n=${PAGE_SIZE}`)));
    $("tags-next").addEventListener("click", () => guarded(() => loadTags(repository, tagsNext)));
    $("delete-cancel").addEventListener("click", () => {
      pending = null;
      $("confirm-delete").close();
    });
    $("delete-confirm").addEventListener("click", () => guarded(deleteConfirmed));
    window.addEventListener("hashchange", () => guarded(() => showRepository(fromHash())));
    guarded(async () => {
      await loadSession();
      await loadCatalog(`/v2/_catalog?n=${PAGE_SIZE}`);
      await showRepository(fromHash());
      document.body.dataset.ready = "true";
    });
  });
})();
