package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on Linux
// whatever the kernel's own tick rate.
const userHZ = 100

// ProcessUsage is a process's resource use as Linux reports it in /proc.
type ProcessUsage struct {
	// CPU is user plus system time since the process started.
	CPU time.Duration `json:"cpu_ns"`
	// PeakRSS is the high-water mark of its resident set (VmHWM); RSS is the current one.
	PeakRSS int64 `json:"peak_rss_bytes"`
	RSS     int64 `json:"rss_bytes"`
}

// ReadProcessUsage reads /proc/<pid>/stat and /proc/<pid>/status.
func ReadProcessUsage(pid int) (ProcessUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcessUsage{}, fmt.Errorf("process usage: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count the fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return ProcessUsage{}, fmt.Errorf("process usage: /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return ProcessUsage{}, fmt.Errorf("process usage: /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return ProcessUsage{}, fmt.Errorf("process usage: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	u := ProcessUsage{CPU: time.Duration(ticks) * time.Second / userHZ}

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcessUsage{}, fmt.Errorf("process usage: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmHWM":
			dst = &u.PeakRSS
		case "VmRSS":
			dst = &u.RSS
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return ProcessUsage{}, fmt.Errorf("process usage: /proc/%d/status %s: %w", pid, name, err)
		}
		*dst = kb << 10
	}
	if u.PeakRSS == 0 {
		return ProcessUsage{}, fmt.Errorf("process usage: /proc/%d/status has no VmHWM", pid)
	}
	return u, nil
}

// StorageStats reads the counters of a storage fault proxy (internal/dev/faultproxy) at its
// stats endpoint, e.g. https://127.0.0.1:10802/_faultproxy/stats, which must be loopback.
func StorageStats(ctx context.Context, client *http.Client, statsURL string) (faultproxy.Stats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statsURL, nil)
	if err != nil {
		return faultproxy.Stats{}, fmt.Errorf("storage stats: %w", err)
	}
	if err := CheckTarget(ctx, req.URL); err != nil {
		return faultproxy.Stats{}, fmt.Errorf("storage stats: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return faultproxy.Stats{}, fmt.Errorf("storage stats: %s", describe(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return faultproxy.Stats{}, fmt.Errorf("storage stats: HTTP %d", resp.StatusCode)
	}
	var s faultproxy.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return faultproxy.Stats{}, fmt.Errorf("storage stats: %w", err)
	}
	return s, nil
}
