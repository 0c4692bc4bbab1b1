// Command heal measures self-healing end to end: a real supervisor in proxy
// mode runs internal/heal/testdata/crashy, which crashes on one kind of
// input, under keep-alive load with a malicious share; it prints, per run,
// the crashes before the seal, the time from the first crash to the rule,
// benign success (with and without self-healing) and whether any benign
// request was blocked. Run it from the module root:
//
//	go run ./bench/heal [-runs 3] [-workers 8] [-attack-every 10] [-benign 10000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/graftdev/graft/internal/heal/scenario"
	"github.com/graftdev/graft/internal/listener"
)

func main() {
	listener.MaybeShim()
	runs := flag.Int("runs", 3, "runs per attack kind")
	workers := flag.Int("workers", 8, "concurrent keep-alive clients")
	every := flag.Int("attack-every", 10, "one request in N is malicious (10 = a 10% mix)")
	benign := flag.Int("benign", 10000, "benign requests after the seal (baseline: in all)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *runs, *workers, *every, *benign); err != nil {
		fmt.Fprintln(os.Stderr, "bench/heal:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, runs, workers, every, benign int) error {
	dir, err := os.MkdirTemp("", "graft-bench-heal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fixture := filepath.Join(dir, "crashy")
	if out, err := exec.Command("go", "build", "-o", fixture, "./internal/heal/testdata/crashy").CombinedOutput(); err != nil {
		return fmt.Errorf("build fixture: %v\n%s", err, out)
	}
	fmt.Printf("# go run ./bench/heal -runs %d -workers %d -attack-every %d -benign %d\n", runs, workers, every, benign)
	fmt.Printf("# %s, %s/%s, %d CPUs, %s\n\n", time.Now().UTC().Format(time.RFC3339), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "attack\theal\trun\tcrashes before seal\tcrashes\tfirst crash→sealed\tbenign\tbenign ok\tbenign blocked\tattacks\tattacks sealed\treq/s\t")
	for _, kind := range []string{scenario.NilMap, scenario.Index} {
		for _, noHeal := range []bool{false, true} {
			n := runs
			if noHeal {
				n = 1
			}
			for i := range n {
				cfg := scenario.Config{
					Fixture: fixture, Kind: kind, Workers: workers, AttackEvery: every,
					BenignAfterSeal: benign, NoHeal: noHeal, Timeout: 120 * time.Second,
					StorePath: filepath.Join(dir, fmt.Sprintf("seal-%s-%d.json", kind, i)),
				}
				if noHeal {
					// Without healing the service is in a restart loop
					// with growing backoff; a bounded window shows it.
					cfg.Timeout = 30 * time.Second
				}
				res, err := scenario.Run(ctx, cfg)
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s run %d: %v\n", kind, i+1, err)
				}
				healCol, seal, before := "on", res.TimeToSeal().Round(time.Millisecond).String(), fmt.Sprint(res.CrashesBeforeSeal)
				if noHeal {
					healCol, seal, before = "off", "-", "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%.3f%%\t%d\t%d\t%d\t%.0f\t\n", kind, healCol, i+1, before, res.Crashes, seal,
					res.Benign, 100*res.BenignSuccess(), res.BenignBlocked, res.Attacks, res.AttacksSealed, res.RequestsPerSec)
			}
		}
	}
	return tw.Flush()
}
