#!/usr/bin/env bash
# Make sure podman can build and run the release image in the image test (k8s/image), and print
# podman's path.
#
#   scripts/ensure-podman.sh
#
# $PODMAN wins when set; then podman on PATH. The test runs containers with runc (crun refuses
# the cgroup layout and rlimits of some hosts), so runc must be there too. When either is missing
# and this runs as root with apt-get (a fresh CI machine), Debian's podman, buildah and runc
# packages are installed. Otherwise it fails, saying what to install.
set -euo pipefail

readonly PKGS=(podman buildah runc)

found() {
	if [[ -n ${PODMAN:-} ]]; then
		[[ -x $PODMAN ]] || return 2
	else
		command -v podman >/dev/null || return 1
	fi
	command -v runc >/dev/null || return 1
}

print() {
	if [[ -n ${PODMAN:-} ]]; then
		echo "$PODMAN"
	else
		command -v podman
	fi
}

rc=0
found || rc=$?
if ((rc == 0)); then
	print
	exit 0
elif ((rc == 2)); then
	echo "ensure-podman.sh: PODMAN=$PODMAN is not an executable file" >&2
	exit 1
fi

if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
	echo "ensure-podman.sh: podman or runc not found; install them (Debian/Ubuntu: apt-get install ${PKGS[*]})" \
		"or set PODMAN=/path/to/podman" >&2
	exit 1
fi
echo "ensure-podman.sh: podman or runc not found; installing ${PKGS[*]}" >&2
{
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PKGS[@]}"
} >&2 || {
	echo "ensure-podman.sh: installing ${PKGS[*]} failed" >&2
	exit 1
}
found || {
	echo "ensure-podman.sh: ${PKGS[*]} are installed but podman or runc is not on PATH" >&2
	exit 1
}
print
