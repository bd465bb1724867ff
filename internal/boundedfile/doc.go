// Package boundedfile reads the files the job is given (secrets, keys, signed checkpoints,
// proofs, policy files) so that no such file can stop the job: the open never blocks (a FIFO
// with no writer), only a regular file is read (not a FIFO, a device such as /dev/zero, a
// directory or a socket), and never more than a bound the caller states.
package boundedfile
