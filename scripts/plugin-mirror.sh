# shellcheck shell=bash
# Sourced by install-pulumi-toolchain.sh and ensure-provider-plugins.sh: where the
# offline plugin mirror is, and how a tarball from it is verified.
#
# A mirror is a folder of Pulumi's release tarballs under their release names
# (pulumi-resource-NAME-vVERSION-linux-amd64.tar.gz,
# pulumi-language-nodejs-vVERSION-linux-amd64.tar.gz) with a SHA256SUMS file
# beside them, as `sha256sum` writes it. PULUMI_PLUGIN_MIRROR names it; the
# default is ../shared/pulumi-plugins beside the project, when that exists.

# mirror_arch: the architecture as Pulumi's release names spell it (amd64, arm64).
mirror_arch() {
  case "$(uname -m)" in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

mirror_dir() {
  local project_dir="$1"
  if [ -n "${PULUMI_PLUGIN_MIRROR:-}" ]; then
    printf '%s\n' "$PULUMI_PLUGIN_MIRROR"
  elif [ -d "$project_dir/../shared/pulumi-plugins" ]; then
    (cd "$project_dir/../shared/pulumi-plugins" && pwd)
  fi
}

# mirror_tarball MIRROR FILE: prints the tarball's path when the mirror has it and
# its SHA256 matches the mirror's SHA256SUMS; fails (saying why) when it is there
# but does not verify; prints nothing when the mirror lacks it.
mirror_tarball() {
  local mirror="$1" file="$2" expected actual
  [ -n "$mirror" ] && [ -f "$mirror/$file" ] || return 0
  [ -r "$mirror/SHA256SUMS" ] || { echo "error: $mirror has $file but no SHA256SUMS to verify it against" >&2; return 1; }
  expected="$(awk -v f="$file" '{ n = $2; sub(/^\*/, "", n); sub(/^\.\//, "", n) } n == f { print $1; exit }' "$mirror/SHA256SUMS")"
  [ -n "$expected" ] || { echo "error: $mirror/SHA256SUMS has no line for $file" >&2; return 1; }
  actual="$(sha256sum "$mirror/$file" | cut -d' ' -f1)"
  if [ "$actual" != "$expected" ]; then
    echo "error: $mirror/$file does not match SHA256SUMS (expected $expected, got $actual); not installing it" >&2
    return 1
  fi
  printf '%s\n' "$mirror/$file"
}
