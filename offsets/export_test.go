package offsets

// StopRenewing makes an s3:// lease stop renewing, as a process frozen or cut off
// from S3 would, for the lease contract's takeover check.
func StopRenewing(l Lease) { l.(*s3Lease).stopRenewing() }
