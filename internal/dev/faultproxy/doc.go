// Package faultproxy is an HTTPS reverse proxy in front of Azurite that makes Azure
// Storage fail the way it does in production, and counts every storage transaction that
// passes through it.
//
// Azure Storage answers 503 ServerBusy under load, loses responses (the service did the
// work, the answer never arrives) and times out. The Azure SDKs retry all three, which is
// exactly what makes a non-idempotent call (a table insert, an enqueue) happen twice.
// Azurite never fails on its own; this proxy makes it fail, at random, with the rates set
// per service:
//
//   - Busy: answer 503 ServerBusy in the service's own error format (Table: JSON
//     odata.error; Queue and Blob: XML <Error>) without forwarding the request.
//   - Lost: forward the request, let Azurite finish it, then lose the answer: half of the
//     time a 503 ServerBusy, half of the time a dropped connection.
//   - Timeout: hold the request for Config.Hold (or until the client gives up), without
//     forwarding it, then drop the connection.
//   - Drop (enqueues only, not to a -poison queue): answer 201 as if the message was
//     queued, and throw it away: a message lost outright, not delayed. KeepMessages
//     spares the messages that name something a test watches.
//
// Outage makes one service answer ServerBusy to every request naming something (a
// partition key, say) for a while: an outage of one partition, long enough for a job
// reading it to fail on every delivery and be poisoned.
//
// One Proxy serves the three services, one listener each (Handler(ServiceTable) and so
// on), and keeps the counters of all three: requests received, requests forwarded, the
// faults injected, and per operation (method and resource kind, such as "PUT entity",
// "POST batch", "POST messages", "GET blob") the requests received. With every rate at 0
// the proxy only counts, which is how the storage transactions per onboarding are
// measured:
//
//	p, err := faultproxy.New(faultproxy.Config{Targets: map[faultproxy.Service]string{
//		faultproxy.ServiceTable: "https://127.0.0.1:10002"}})
//	srv := httptest.NewTLSServer(p.Handler(faultproxy.ServiceTable))
//	... point the table client at srv.URL ...
//	before := p.Stats()
//	... one onboarding ...
//	n := p.Stats().Sub(before).Services[faultproxy.ServiceTable].Requests
//
// Inject forces the next requests of one operation to meet a given fault, whatever the
// rates: a test loses exactly the first answer of an insert and watches the SDK's retry.
// InjectThen also runs a function between the lost answer and the retry (another writer
// moving the row on, say).
// Rates change at run time with SetRates. The same counters and settings are served over
// HTTP on every listener under /_faultproxy/ (GET stats, GET and POST config, POST
// reset), a path that no storage request can take: account names cannot contain '_'.
//
// Requests are recognised path-style (https://127.0.0.1:10002/<account>/...) and
// product-style (https://<account>.blob.localhost:port/...). The Host header reaches
// Azurite unchanged, so signatures and Azurite's account resolution stay valid.
package faultproxy
