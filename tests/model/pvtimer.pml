/* SPDX-License-Identifier: MIT */
/*
 * Promela model of the pvtimer ABI 1.1 protocol (docs/pvtimer-abi.md,
 * docs/model.md): one guest vCPU and its slot, one host agent thread, a
 * discrete clock, the hardware (LAPIC deadline) timer, and an environment
 * that can stall the host (breaking its promises), let it recover or never
 * run again (a dead host), skew its TSC conversion and fail an injection.
 *
 * Sequential consistency: every shared access is its own step (atomic{}
 * only groups one shared access with private or ghost bookkeeping).
 *
 * Bug switches revert one fix each (see run.sh): BUG_REJECT_NO_WAKE (item
 * 1), BUG_PAST_REJECT (item 2), BUG_GEN_WRAP (item 3), BUG_FIRED_DONE
 * (item 4), BUG_SEEN_TRUST and BACKSTOP=0 with CHECK_P2 (item 6),
 * BUG_HOLD_GEN_ONLY (hold/fire-time re-read comparing generations only),
 * BUG_SKIP_UNCOVERED (issue 10: a publish skipped although the standing
 * promise no longer covers the next pass).
 */

/* ---- time ----
 * Relative time: `now` is the constant NOW and every stored time is kept
 * relative to it; a tick lowers each by one (never below FLOOR, "long
 * ago"), so states that differ only by a shift in time are one state and
 * time runs for ever (no horizon). 0 is the NEVER/off sentinel, 255 the
 * FOLLOW/no-obligation one; neither moves. */
#ifndef NOW
#define NOW 5
#endif
#define now NOW
#define FLOOR 1
#ifndef K
#define K 3            /* the guest arms deadlines now+1 .. now+K */
#endif
#ifndef M
#define M 4            /* generation modulus: wrap after M publishes */
#endif
#ifndef PMAX
#define PMAX 2         /* the host promises now+1 .. now+PMAX */
#endif
#ifndef GOPS
#define GOPS 3         /* re-arms and cancels the guest OS may do */
#endif
#define HORIZON K      /* max_horizon_tsc */
#define MARGIN 0       /* margin_tsc */
#define PAST_LIMIT 0   /* 1.0 rejected deadlines more than this in the past */
#define BREQ 3         /* the lateness bound required against a dead host */
#ifdef BUG_NO_BACKSTOP
#define BACKSTOP 0     /* item 6 reverted: no backstop, yet P2 checked */
#define CHECK_P2
#endif
#ifndef BACKSTOP
#define BACKSTOP BREQ  /* the guest's backstop period B (0 = off) */
#endif
#if BACKSTOP > 0
#define CHECK_P2       /* P2 is promised only with a backstop */
#endif
#ifndef STOPS
#define STOPS 1        /* stop/handback + resume cycles the host may do */
#endif
#ifndef DETACHES
#define DETACHES 1     /* detach + re-bind cycles */
#endif
#ifndef STALLS
#define STALLS 1       /* host stalls (each may last for ever: death) */
#endif

#define NEVER 0        /* next_sync: not looking */
#define FOLLOW 255     /* slot next_sync: follow the area */
#define INF 255        /* ghost: no pass obligation */

/* status codes */
#define ST_NONE 0
#define ST_SEEN 1
#define ST_FIRED 2
#define ST_REJ 3
#define ST_HB 4

/* ---- shared memory (the area) ---- */
/* slot guest line, written atomically (the seqlock is abstracted) */
byte line_gen;
byte line_D;
bit line_armed;
bit word = 1;               /* the slot's pending bit (activate sets it) */
bit summary = 1;            /* its summary bit */
/* host-written */
bit flags = 1;              /* host_flags ACTIVE */
byte area_sync = NOW + 1;   /* header next_sync_tsc */
byte slot_sync = FOLLOW;    /* slot next_sync_tsc */
byte st_gen;                /* status_word: generation ... */
byte st_code = ST_NONE;     /* ... and status, one atomic word */

/* ---- the vCPU's interrupt inputs and hardware timer ---- */
bit pv_irq;                 /* pvtimer vector pending at the LAPIC */
bit hw_irq;                 /* LAPIC timer interrupt pending */
byte hw_dl;                 /* LAPIC TSC deadline, 0 = off */

/* ---- guest state the properties look at ---- */
bit want;                   /* the guest OS has a timer pending ... */
byte D;                     /* ... at this deadline */
bit halted;                 /* the vCPU is in hlt */
bit vec_ok = 1;             /* its vector is in the host's range */
bit g_halt_broken;          /* ghost: it halted on the pv path after
			     * reading a promise already broken */

/* ---- host state the clock looks at (its obligations) ---- */
bit held;                   /* the host holds (hgen, hD) */
byte hgen;
byte hD;
byte hdue = NOW + 1;        /* ghost: the next summary exchange is due by */
bit hbusy;                  /* mid-iteration: a healthy host takes 0 time */

/* time-valued private variables the tick must shift too */
byte g_as;                  /* the guest's loaded area sync ... */
byte g_ss;                  /* ... and slot sync, until it reads the TSC */
byte g_bk;                  /* the backstop deadline it computed */
byte h_lD;                  /* the host's copy of the line's deadline */
byte fm_D;                  /* the deadline of the arm it last fired */

/* ---- environment ---- */
bit hstalled;               /* the host breaks promises (stalled or dead) */
bit hunrel;                 /* an injection was lost */
byte skew;                  /* host TSC conversion early by this much */
byte stall_budget = STALLS;
byte inj_budget = 1;
byte gops = GOPS;

/* ghosts per published arm (reset by each publish) */
bit line_fired;             /* the host decided to fire this arm */
bit line_woken;             /* the host gave this rejected arm its wake */

#define ASLEEP (halted && want && !pv_irq && !hw_irq)
#define SHIFT(v) if :: v > FLOOR && v < 255 -> v-- :: else -> skip fi

#include "guest.pml"
#include "host.pml"

/* The clock. A tick is allowed when a healthy host has nothing due: it has
 * made its pass by every promise it published (hdue), fired what is due,
 * and is not mid-iteration. A stalled host constrains nothing. The
 * properties are checked at every tick, before time moves on. */
active proctype clock()
{
#ifdef SKEW
	if
	:: skew = 0
	:: skew = 1
	fi;
#endif
end_clock:
	do
	:: d_step {
		(hstalled || (!hbusy && now < hdue && !(held && now + skew >= hD))) ->
		/* P1: a healthy host loses nothing: a halted guest whose
		 * deadline has come has an interrupt pending. */
		assert(!(ASLEEP && D <= now && !hstalled && !hunrel));
#ifdef CHECK_P2
		/* P2: whatever the host does (stall, die, lose an injection),
		 * a halted guest is late by at most BREQ. */
		assert(!(ASLEEP && D + BREQ <= now));
#endif
		/* P3: a guest that halted on a promise it could see broken
		 * is not late at all (it should have used its hardware). */
		assert(!(ASLEEP && D <= now && g_halt_broken));
		SHIFT(D); SHIFT(line_D); SHIFT(area_sync); SHIFT(hw_dl);
		SHIFT(hD); SHIFT(hdue); SHIFT(g_as); SHIFT(g_ss);
		SHIFT(h_lD); SHIFT(fm_D); SHIFT(g_bk);
		if
		:: hw_dl != 0 && hw_dl <= now -> hw_irq = 1; hw_dl = 0
		:: else -> skip
		fi
	   }
	:: atomic { stall_budget > 0 && !hstalled ->
		hstalled = 1; stall_budget-- }
	:: atomic { hstalled -> hstalled = 0 }
	od
}
