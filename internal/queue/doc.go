// Package queue carries background jobs on Azure Storage queues, one queue per job kind.
//
// Messages are JSON, base64-encoded as the Azure Functions queue trigger expects (its
// default messageEncoding), with a time-to-live past the job's deadline. A poll that must
// happen again is a new message with a visibility delay: nothing waits in-process.
package queue
