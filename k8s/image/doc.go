// Package image holds the test of the release image: it builds the image with scripts/image.sh
// (as `make image` does) and runs it with podman under the pod's restrictions (user 65532, a
// read-only root filesystem, no capabilities, no new privileges) against a real PostgreSQL and
// the stand-in Convai endpoint.
//
// The test needs podman and runc; `make test` installs them when it runs as root
// (scripts/ensure-podman.sh). Without them it fails and says what to install.
package image
