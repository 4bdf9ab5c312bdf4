package queue

import (
	"github.com/activeloopai/azcreds/internal/config"
	"github.com/activeloopai/azcreds/internal/credential"
)

// JobQueue is one row of the job table: a kind of background job, the Storage queue that
// carries its messages, and the queue-triggered function the Functions host runs them with.
type JobQueue struct {
	Kind credential.JobKind
	// Queue is the Storage queue's name, kept short: the host moves a message it gives up
	// on to Queue+PoisonSuffix, and a queue name has at most 63 characters.
	Queue string
	// Function is the host's function: functions/<Function>/function.json, invoked as
	// POST /<Function>.
	Function string
	// Binding names the function's queueTrigger binding: the key of the message under the
	// invocation's Data.
	Binding string
}

// JobQueues is the job table. Queue and function names are part of the deployment (the
// Bicep creates the queues, the host indexes the functions) and messages already queued
// wait under them: never rename one.
var JobQueues = []JobQueue{
	{Kind: credential.JobSPPoll, Queue: "sppoll", Function: "sp-poll", Binding: "job"},
	{Kind: credential.JobAccessProbe, Queue: "accessprobe", Function: "access-probe", Binding: "job"},
	{Kind: credential.JobAppCleanup, Queue: "appcleanup", Function: "app-cleanup", Binding: "job"},
	{Kind: credential.JobHealthProbe, Queue: "healthprobe", Function: "health-probe", Binding: "job"},
}

// PoisonSuffix names a queue's poison queue, as the Functions host does.
const PoisonSuffix = "-poison"

// MaxDequeueCount is how many deliveries a message gets before it moves to its poison
// queue: host.json's extensions.queues.maxDequeueCount (a test holds them equal), the
// standalone worker's default, and what the job runner counts as a last delivery.
const MaxDequeueCount = 5

// StorageConnection is the app setting prefix of the storage account that holds the
// queues: the backend's own (AzureWebJobsStorage, with its __queueServiceUri).
const StorageConnection = config.KeyStorage

// Timer is one timer-triggered function of the Functions host:
// functions/<Function>/function.json, whose timerTrigger binding named Binding runs on the
// NCRONTAB schedule in the app setting ScheduleSetting. The host invokes it as
// POST /<Function>; standalone, internal/worker's Ticker is its twin.
type Timer struct {
	Function        string
	Binding         string
	ScheduleSetting string
}

// HealthSweep is the timer function that sweeps the verified credentials' health.
var HealthSweep = Timer{Function: "health-sweep", Binding: "timer", ScheduleSetting: config.KeyHealthSchedule}

// Reconcile is the timer function of the reconciler: the open-window index and the
// poison queues, every minute by default.
var Reconcile = Timer{Function: "reconcile", Binding: "timer", ScheduleSetting: config.KeyReconcileSchedule}

// Timers is the timer table.
var Timers = []Timer{HealthSweep, Reconcile}

// Of returns the row of a job kind; ok is false for a kind the table does not have.
func Of(kind credential.JobKind) (jq JobQueue, ok bool) {
	for _, jq := range JobQueues {
		if jq.Kind == kind {
			return jq, true
		}
	}
	return JobQueue{}, false
}

// Kinds lists the job kinds, one queue each, in the table's order.
func Kinds() []credential.JobKind {
	kinds := make([]credential.JobKind, len(JobQueues))
	for i, jq := range JobQueues {
		kinds[i] = jq.Kind
	}
	return kinds
}
