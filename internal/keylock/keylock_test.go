package keylock

import (
	"sync"
	"testing"
)

func TestMapSerialisesPerKeyAndForgets(t *testing.T) {
	var m Map
	counters := map[string]*int{"a": new(int), "b": new(int)}
	var wg sync.WaitGroup
	for i := range 200 {
		key := "a"
		if i%2 == 1 {
			key = "b"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := m.Lock(key)
			defer unlock()
			*counters[key]++ // a data race here fails under -race if Lock does not serialise
		}()
	}
	wg.Wait()
	if *counters["a"] != 100 || *counters["b"] != 100 {
		t.Fatalf("counters = %d, %d; want 100, 100", *counters["a"], *counters["b"])
	}
	if n := m.Len(); n != 0 {
		t.Fatalf("Len after all unlocks = %d, want 0", n)
	}
}
