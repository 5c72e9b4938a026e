// A shell function for client hosts that writes a new OCI image layout of random
// layers (each a real tar), so that every image a test pushes is distinct.
// Runs in the ssh-client-host image (POSIX sh, coreutils, tar); no Docker needed.

/** Defines `make_image DIR LAYERS BYTES_PER_LAYER [CREATED]`: an OCI layout at DIR, tag "latest"; CREATED (RFC 3339) goes into the config. */
export const MAKE_IMAGE_SH = String.raw`
make_image() {
  dir=$1; count=$2; size=$3
  rm -rf "$dir"; mkdir -p "$dir/blobs/sha256"
  work=$(mktemp -d)
  layers=""; diffids=""
  i=1
  while [ "$i" -le "$count" ]; do
    head -c "$size" /dev/urandom >"$work/layer$i.bin"
    tar -C "$work" -cf "$work/layer$i.tar" "layer$i.bin"
    diffid=$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)
    # Compressed as a registry stores it, so that clients copy it as it is and the digest holds end to end.
    gzip -n -1 "$work/layer$i.tar"
    h=$(sha256sum "$work/layer$i.tar.gz" | cut -d' ' -f1)
    s=$(stat -c %s "$work/layer$i.tar.gz")
    mv "$work/layer$i.tar.gz" "$dir/blobs/sha256/$h"
    rm -f "$work/layer$i.bin"
    layers="$layers${"$"}{layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$h\",\"size\":$s}"
    diffids="$diffids${"$"}{diffids:+,}\"sha256:$diffid\""
    i=$((i + 1))
  done
  created=""; [ -n "${"$"}{4:-}" ] && created="\"created\":\"$4\","
  printf '{%s"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$created" "$diffids" >"$work/config"
  ch=$(sha256sum "$work/config" | cut -d' ' -f1); cs=$(stat -c %s "$work/config")
  mv "$work/config" "$dir/blobs/sha256/$ch"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$ch" "$cs" "$layers" >"$work/manifest"
  mh=$(sha256sum "$work/manifest" | cut -d' ' -f1); ms=$(stat -c %s "$work/manifest")
  mv "$work/manifest" "$dir/blobs/sha256/$mh"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' "$mh" "$ms" >"$dir/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  rm -rf "$work"
  echo "sha256:$mh"
}
`;
