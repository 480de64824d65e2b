package main

import (
	"context"

	"github.com/vesperlog/vesperlog/log/status"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// statusPage is the page at /: both logs, their witnesses and searches.
func (s *app) statusPage() *status.Page {
	c := status.Config{
		Vetting: status.Log{
			Reader: s.vetting,
			Origin: s.vetting.Origin(),
			Prefix: vettingPrefix,
			VKeys:  s.vkeys,
			Policy: s.policy,
		},
		Agents:       func() *vetting.Agents { return s.agents.Get(context.Background()) },
		LookupDigest: s.service.Lookup,
		Witnesses:    s.witnesses,
	}
	if s.stict != nil {
		c.STICT = &status.Log{
			Reader: s.stict.log,
			Origin: s.stict.log.Origin(),
			Prefix: stictPrefix,
			VKeys:  s.stict.keys.vkeys(),
			Policy: s.stict.policy,
		}
		c.LookupLeafHash = s.stict.service.IndexOf
	}
	return status.New(c)
}
