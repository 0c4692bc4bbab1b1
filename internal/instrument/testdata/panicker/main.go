// Command panicker crashes in a way chosen by its argument, for the tests
// of graft build: file:line in traces, sealing, check sites.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

type store struct{ items []string }

// get is kept out of line: graft gives functions that the compiler inlines
// no patch point, and the tests seal this one.
//
//go:noinline
func (s *store) get(i int) (string, error) {
	if i < -100 {
		return "", errors.New("way out")
	}
	return s.items[i], nil
}

func handle(s *store, arg string) error {
	i, err := strconv.Atoi(arg)
	if err != nil {
		return fmt.Errorf("handle: %w", err)
	}
	v, err := s.get(i)
	if err != nil {
		return err
	}
	fmt.Println("value", v)
	return nil
}

// pick is an inlinable leaf: no patch point, but its index is a recover site.
func pick(items []string, i int) string { return items[i] }

func handleLeaf(s *store, arg string) error {
	i, err := strconv.Atoi(arg)
	if err != nil {
		return err
	}
	fmt.Println("value", pick(s.items, i))
	return nil
}

type node struct {
	next *node
	v    int
}

// second dereferences a nil pointer when n has no successor.
func (n *node) second() int { return n.next.v }

func handleNil(arg string) error {
	n := &node{v: 1}
	if arg == "link" {
		n.next = &node{v: 2}
	}
	fmt.Println("value", n.second())
	return nil
}

func nested(n int) int {
	if n <= 0 {
		var m map[string]int
		m["x"] = 1 // nil map write
		return 0
	}
	return nested(n-1) + 1
}

func main() {
	s := &store{items: []string{"a", "b", "c"}}
	switch os.Args[1] {
	case "nilmap":
		fmt.Println(nested(3))
	case "nil":
		if err := handleNil(os.Args[2]); err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
	case "leaf":
		if err := handleLeaf(s, os.Args[2]); err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
	default:
		if err := handle(s, os.Args[1]); err != nil {
			fmt.Println("error:", err)
			os.Exit(3)
		}
	}
}
