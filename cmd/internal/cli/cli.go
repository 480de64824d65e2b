// Package cli is the command-line pattern shared by vesper, vesperlog and
// vesperwitness:
//
//	BINARY COMMAND [VERB] -flags args
//
// Every command (and every verb of a command with verbs) has its own flag
// set, a synopsis that writes optional flags [in brackets] and required
// ones bare, and a one-paragraph description. "-h" on any of them prints
// the synopsis, the description and every flag with its help on standard
// output, and exits 0; "BINARY -h" and "BINARY help" list the commands. A
// usage error is one line on standard error, ending with where to find
// help, and exits 2; any other failure is one line and exits 1.
//
// The package imports nothing of vesperlog, so the verifier's binary can
// share it with the servers'.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Action runs a command once its flags are parsed; args are the arguments
// left after the flags.
type Action func(ctx context.Context, args []string, stdout io.Writer) error

// Command is one command, or one verb of a command ("token issue").
type Command struct {
	// Name is the command, or the command and its verb, space-separated.
	Name string
	// Synopsis is what follows the name on the command line: required
	// flags bare, optional ones [in brackets], then the arguments.
	Synopsis string
	// Summary is the command's line in the list of commands.
	Summary string
	// Description is one paragraph, printed by -h.
	Description string
	// Flags defines the command's flags on fs and returns what runs with
	// them. It is called once per run, and by tests to list the flags.
	Flags func(fs *flag.FlagSet) Action
}

// Program is a binary's commands.
type Program struct {
	Name string
	// Commands are the commands and verbs, in the order -h lists them.
	Commands []*Command
	// Default, if set, runs when the first argument is a flag or there is
	// none (vesperlog serves); its Name is empty.
	Default *Command
}

// UsageError is a command line that cannot run: exit 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError.
func Usagef(format string, a ...any) error {
	return &UsageError{fmt.Sprintf(format, a...)}
}

// FlagSet returns c's flag set, with its flags defined, and its action.
// Errors are returned, not printed: Run prints them.
func (p *Program) FlagSet(c *Command) (*flag.FlagSet, Action) {
	fs := flag.NewFlagSet(p.title(c), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, c.Flags(fs)
}

// title is "vesper token issue", or the binary's name for Default.
func (p *Program) title(c *Command) string {
	return strings.TrimSpace(p.Name + " " + c.Name)
}

// Run runs the command args name and returns the exit code.
func (p *Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && isHelp(args[0]) || len(args) > 0 && args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return p.Run(ctx, append(args[1:], "-h"), stdout, stderr)
		}
		if p.Default != nil {
			// The default command's usage lists the commands too.
			return p.runCommand(ctx, p.Default, []string{"-h"}, stdout, stderr)
		}
		p.PrintCommands(stdout)
		return 0
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if p.Default != nil {
			return p.runCommand(ctx, p.Default, args, stdout, stderr)
		}
		if len(args) == 0 {
			p.PrintCommands(stderr)
			return 2
		}
	}
	verbs := p.verbs(args[0])
	switch {
	case len(verbs) == 0:
		fmt.Fprintf(stderr, "%s: unknown command %q (%s -h for the commands)\n", p.Name, args[0], p.Name)
		return 2
	case len(verbs) == 1 && verbs[0].Name == args[0]:
		return p.runCommand(ctx, verbs[0], args[1:], stdout, stderr)
	}
	if len(args) > 1 {
		for _, c := range verbs {
			if c.Name == args[0]+" "+args[1] {
				return p.runCommand(ctx, c, args[2:], stdout, stderr)
			}
		}
		if isHelp(args[1]) {
			fmt.Fprintln(stdout, "usage:")
			for _, c := range verbs {
				fmt.Fprintf(stdout, "  %s %s\n      %s\n", p.title(c), c.Synopsis, c.Summary)
			}
			fmt.Fprintf(stdout, "(%s %s VERB -h for a verb's flags)\n", p.Name, args[0])
			return 0
		}
	}
	names := make([]string, len(verbs))
	for i, c := range verbs {
		names[i] = strings.TrimPrefix(c.Name, args[0]+" ")
	}
	what := "say"
	if len(args) > 1 {
		what = fmt.Sprintf("unknown verb %q; say", args[1])
	}
	fmt.Fprintf(stderr, "%s %s: %s %s (%s %s -h for help)\n", p.Name, args[0], what, orList(names), p.Name, args[0])
	return 2
}

func (p *Program) runCommand(ctx context.Context, c *Command, args []string, stdout, stderr io.Writer) int {
	fs, action := p.FlagSet(c)
	title := p.title(c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			p.PrintUsage(stdout, c, fs)
			return 0
		}
		fmt.Fprintf(stderr, "%s: %s (%s -h for help)\n", title, oneLine(err.Error()), title)
		return 2
	}
	err := action(ctx, fs.Args(), stdout)
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s (%s -h for help)\n", title, oneLine(err.Error()), title)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %s\n", title, oneLine(err.Error()))
	return 1
}

// PrintUsage writes c's synopsis, description and flags.
func (p *Program) PrintUsage(w io.Writer, c *Command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s %s\n", p.title(c), c.Synopsis)
	if c.Description != "" {
		fmt.Fprintf(w, "\n%s\n", wrap(c.Description, 80))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if c == p.Default && len(p.Commands) > 0 {
		fmt.Fprintf(w, "\ncommands (%s COMMAND -h for each):\n", p.Name)
		p.printList(w, p.Commands)
	}
}

// PrintCommands writes the list of commands, one line each.
func (p *Program) PrintCommands(w io.Writer) {
	fmt.Fprintf(w, "usage: %s COMMAND [VERB] [flags] [arguments]\n", p.Name)
	if p.Default != nil {
		fmt.Fprintf(w, "       %s %s\n\n%s\n", p.Name, p.Default.Synopsis, wrap(p.Default.Summary, 80))
	}
	fmt.Fprintf(w, "\ncommands (%s COMMAND -h for each one's flags):\n", p.Name)
	p.printList(w, p.Commands)
}

func (p *Program) printList(w io.Writer, cmds []*Command) {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.Name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
}

// verbs are the commands named name, or name's verbs.
func (p *Program) verbs(name string) []*Command {
	var out []*Command
	for _, c := range p.Commands {
		if first, _, _ := strings.Cut(c.Name, " "); first == name {
			out = append(out, c)
		}
	}
	return out
}

// All is every command, Default first if set: what tests run -h on.
func (p *Program) All() []*Command {
	var all []*Command
	if p.Default != nil {
		all = append(all, p.Default)
	}
	return append(all, p.Commands...)
}

// Args splits c's name into the command-line words that run it.
func (c *Command) Args() []string { return strings.Fields(c.Name) }

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func orList(s []string) string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// wrap folds each paragraph of s at width columns.
func wrap(s string, width int) string {
	var out []string
	for _, para := range strings.Split(s, "\n\n") {
		var b strings.Builder
		n := 0
		for _, w := range strings.Fields(para) {
			if n > 0 && n+1+len(w) > width {
				b.WriteByte('\n')
				n = 0
			} else if n > 0 {
				b.WriteByte(' ')
				n++
			}
			b.WriteString(w)
			n += len(w)
		}
		out = append(out, b.String())
	}
	return strings.Join(out, "\n\n")
}
