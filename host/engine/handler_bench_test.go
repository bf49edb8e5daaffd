package engine

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/luaapi"
)

// BenchmarkHandlerCall: one best path through a script's queue into a Lua
// handler that reads prefix, AS path and communities, as in the bench.
func BenchmarkHandlerCall(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "h.lua")
	os.WriteFile(path, []byte(`local n, hops, comms = 0, 0, 0
function on_best_path(ev)
  n = n + 1
  if ev.prefix == "" then return end
  hops = hops + #ev.as_path
  comms = comms + #ev.communities
end
`), 0o644)
	s := newScript(path, "h.lua", &luaapi.Recorder{}, DefaultLimits, wallClock{}, "", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer s.Stop()
	if err := s.Reload(); err != nil {
		b.Fatal(err)
	}
	ev := (&event.BestPath{Prefix: "10.0.0.0/8", Family: "ipv4-unicast"}).WithAttributes(event.Attributes{
		ASPath: []uint32{65002, 3356, 1299, 64512}, Communities: []string{"65000:1", "65000:2", "3356:100"}})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Push(event.Of(ev))
		if i%1024 == 1023 {
			s.Sync()
		}
	}
	s.Sync()
}
