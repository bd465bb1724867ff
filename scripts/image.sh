#!/usr/bin/env bash
# Build the release image (Dockerfile at the repository root) with podman, docker or buildah.
#
#   scripts/image.sh [-t NAME:TAG]     default tag: convai-retention:$VERSION
#
# The Dockerfile starts FROM scratch, so nothing is pulled: this script builds the binary here
# (CGO_ENABLED=0, -trimpath, version stamped) and puts it into a build context of its own with the
# Dockerfile, the CA bundle of this machine and the passwd/group entries of user 65532.
#
# Environment:
#   VERSION         the version the binary and the image carry (default: git describe, else dev)
#   GOARCH          the target architecture (default: this machine's)
#   CONTAINER_TOOL  the build command, with any global flags, e.g.
#                   "podman --root /tmp/store --storage-driver vfs" (default: podman, then docker,
#                   then buildah, whichever is found first)
#   CA_BUNDLE       the CA certificates to ship (default /etc/ssl/certs/ca-certificates.crt)
#
# It prints the image ID on stdout.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"

die() {
	echo "image.sh: $*" >&2
	exit 1
}

readonly UID_GID=65532
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
# An image tag allows [A-Za-z0-9_.-] only.
tag_version=$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-')
tag=convai-retention:$tag_version

while [[ $# -gt 0 ]]; do
	case $1 in
	-t | --tag)
		[[ $# -ge 2 ]] || die "$1 needs a NAME:TAG"
		tag=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $1 (usage: $0 [-t NAME:TAG])" ;;
	esac
done

if [[ -n ${CONTAINER_TOOL:-} ]]; then
	read -ra tool <<<"$CONTAINER_TOOL"
else
	for t in podman docker buildah; do
		if command -v "$t" >/dev/null; then
			tool=("$t")
			break
		fi
	done
	[[ -n ${tool:-} ]] || die "no podman, docker or buildah found; install one (Debian/Ubuntu: apt-get install podman buildah runc)"
fi

ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[[ -s $ca ]] || die "no CA bundle at $ca; install the ca-certificates package or set CA_BUNDLE"

ctx=$(mktemp -d "${TMPDIR:-/tmp}/retention-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

echo "image.sh: building retention $version" >&2
CGO_ENABLED=0 GOOS=linux GOWORK=off go build -trimpath -ldflags "-s -w -X main.version=$version" \
	-o "$ctx/retention" ./cmd/retention
cp Dockerfile "$ctx/Dockerfile"
cp "$ca" "$ctx/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/nonexistent:/sbin/nologin\n' \
	"$UID_GID" "$UID_GID" >"$ctx/passwd"
printf 'root:x:0:\nnonroot:x:%d:\n' "$UID_GID" >"$ctx/group"
chmod 0755 "$ctx/retention"
chmod 0644 "$ctx/ca-certificates.crt" "$ctx/passwd" "$ctx/group"

echo "image.sh: ${tool[*]} build -t $tag" >&2
case ${tool[0]##*/} in
buildah) build=(bud) ;;
*) build=(build) ;;
esac
"${tool[@]}" "${build[@]}" --build-arg "VERSION=$version" -t "$tag" -f "$ctx/Dockerfile" "$ctx" >&2
if [[ ${build[0]} == bud ]]; then
	"${tool[@]}" images --noheading --quiet --no-trunc "$tag"
else
	"${tool[@]}" image inspect --format '{{.Id}}' "$tag"
fi
