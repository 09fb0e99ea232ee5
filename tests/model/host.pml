/* SPDX-License-Identifier: MIT */
/*
 * The host: libpvtimer's host side (read_slot, ack, fired, handback,
 * activate/deactivate/publish, take_pending) driven by libagent's engine
 * (iterate, quiesce, resume, detach, bind), ABI 1.1. Included by
 * pvtimer.pml. One agent thread: operations never overlap.
 */

/* results of one read of the slot (pvtimer_host_read_slot) */
#define RES_REJ 1      /* rejected: REJECTED written, maybe one wake */
#define RES_CANCEL 2   /* not armed */
#define RES_DONE 3     /* already fired (snap.already_fired) */
#define RES_ARMED 4    /* a valid arm to hold */
#define RES_FIRE 5     /* fire-time re-read: the held arm, due: fire it */

bit bound = 1;          /* the slot is bound (host-private) */

/* the host's status-word store; `extra` is private bookkeeping done in
 * the same step */
#define H_STATUS(g, c, extra) \
	atomic { st_gen = g; st_code = c; hs_gen = g; hs_code = c; extra }

inline h_inject()
{
#ifdef INJ_FAIL
	if
	:: pv_irq = 1
	:: inj_budget > 0 -> inj_budget--; hunrel = 1   /* lost */
	fi
#else
	pv_irq = 1
#endif
}

/* publish(T): the promise "my next summary exchange is at or before T" */
inline h_publish()
{
	atomic {
		area_sync = now + 1;
		do
		:: area_sync < now + PMAX -> area_sync++
		:: break
		od;
		if
		:: hdue > area_sync -> hdue = area_sync
		:: else -> skip
		fi
	}
}

#ifdef BUG_HOLD_GEN_ONLY
#define SAME_ARM(g, d, hg, hd) (g == hg)
#else
#define SAME_ARM(g, d, hg, hd) (g == hg && d == hd)
#endif
/* the fire-time re-read's test: libagent's fire_due() compares the
 * generation only (BUG_FIRE_GEN_ONLY, as on main at 09:45 UTC) */
#ifdef BUG_FIRE_GEN_ONLY
#define FIRE_SAME(g, d, hg, hd) (g == hg)
#else
#define FIRE_SAME(g, d, hg, hd) SAME_ARM(g, d, hg, hd)
#endif

/* One read of the guest line and the library's judgement of it, in one
 * step (the line is read once; everything else is host-private or ghost).
 * recheck: this is the fire-time re-read of the held arm. */
inline h_read(recheck)
{
	atomic {
		lg = line_gen; h_lD = line_D; la = line_armed;
		wake = 0;
		if
		:: la && !vec_ok -> res = RES_REJ
#ifdef BUG_PAST_REJECT
		:: la && vec_ok && h_lD + PAST_LIMIT < now -> res = RES_REJ; pastrej = 1
#endif
#ifdef BUG_GEN_WRAP
		/* 1.0: refuse the last fired generation, for ever */
		:: else ->
			if
			:: la && fm_valid && fm_gen == lg -> res = RES_DONE
			:: la && !(fm_valid && fm_gen == lg) -> res = RES_ARMED
			:: !la -> res = RES_CANCEL
			fi
#else
		/* 1.1: exact; forgotten as soon as another arm is read */
		:: else ->
			if
			:: la && fm_valid && fm_gen == lg && fm_D == h_lD -> res = RES_DONE
			:: else ->
				fm_valid = 0; fm_gen = 0; fm_D = 0;
				res = (la -> RES_ARMED : RES_CANCEL)
			fi
#endif
		fi;
		if
		:: res == RES_REJ ->
			/* rule 1: one interrupt, on the first read only */
			wake = !(hs_gen == lg && hs_code == ST_REJ);
#if defined(BUG_REJECT_NO_WAKE)
			wake = 0;
#endif
			if
			:: pastrej -> wake = 0   /* 1.0 PAST: silent */
			:: else -> skip
			fi;
			if
			:: wake -> assert(!line_woken); line_woken = 1
			:: else -> skip
			fi
		:: res == RES_ARMED && recheck && held &&
		   FIRE_SAME(lg, h_lD, hgen, hD) && now + skew >= hD ->
			/* the decision to fire this arm */
			assert(!line_fired);          /* no double fire */
			assert(now + skew >= h_lD);     /* no early fire */
			line_fired = 1;
			res = RES_FIRE
		:: else -> skip
		fi;
		pastrej = 0
	}
}

inline h_hold()
{
	if
	:: held && SAME_ARM(lg, h_lD, hgen, hD) -> skip
	:: else -> H_STATUS(lg, ST_SEEN, held = 1; hgen = lg; hD = h_lD)
	fi
}

inline h_fire()
{
	H_STATUS(hgen, ST_FIRED, fm_valid = 1; fm_gen = hgen; fm_D = hD;
		 held = 0; hgen = 0; hD = 0);
	h_inject()
}

/* what a pass or a fire-time re-read does with the result */
inline h_apply()
{
	if
	:: res == RES_REJ ->
		H_STATUS(lg, ST_REJ, held = 0; hgen = 0; hD = 0);
		if
		:: wake -> h_inject()
		:: else -> skip
		fi
	:: res == RES_CANCEL && hs_code == ST_SEEN ->
		H_STATUS(lg, ST_NONE, held = 0; hgen = 0; hD = 0)
	:: res == RES_CANCEL && hs_code != ST_SEEN || res == RES_DONE ->
		d_step { held = 0; hgen = 0; hD = 0 }
	:: res == RES_ARMED -> h_hold()
	:: res == RES_FIRE -> h_fire()
	fi;
	h_lD = 0
}

/* exchange summary, then the word; read the slot if its bit was set.
 * The obligation this exchange leaves is the value standing now: the next
 * pass begins by it (spec §5), whether it was published for this pass or
 * left standing from an earlier one (hysteresis). */
inline h_pass()
{
	atomic {
		x = summary; summary = 0;
#ifdef BUG_SKIP_UNCOVERED
		if
		:: hlax -> hdue = now + PMAX + 1; hlax = 0
		:: else -> hdue = (area_sync == NEVER -> INF : area_sync)
		fi
#else
		hdue = (area_sync == NEVER -> INF : area_sync)
#endif
	};
	if
	:: x ->
		atomic { x = word; word = 0 };
		if
		:: x && bound -> h_read(0); h_apply()
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* fire what is due, re-reading the slot first (the cancel race); a held
 * deadline in the past fires at once */
inline h_fire_due()
{
	do
	:: held && now + skew >= hD -> h_read(1); h_apply()
	:: else -> break
	od
}

inline h_handback(g)
{
	H_STATUS(g, ST_HB, held = 0; hgen = 0; hD = 0);
	h_inject()
}

active proctype host()
{
	byte hs_gen;            /* the status word it last wrote */
	byte hs_code = ST_NONE;
	bit fm_valid;           /* the (generation, deadline) it last fired */
	byte fm_gen;
	bit paused;
	byte stops = STOPS;
	byte detaches = DETACHES;
	byte lg, res;
	bit la, wake, x, pastrej;
#ifdef BUG_SKIP_UNCOVERED
	bit hlax;               /* skipped a publish it needed */
#endif

end_host:
	do
	:: !paused ->                 /* iterate() */
		/* publish, or (hysteresis) leave the standing promise when it
		 * still covers the next pass: a healthy pass takes no time
		 * here, so "covers" is "lies after now" */
		atomic { hbusy = 1;
			if
			:: h_publish()
			:: area_sync != NEVER && area_sync > now -> skip
#ifdef BUG_SKIP_UNCOVERED
			/* the bug: skip although the standing promise is
			 * due, the next pass coming at the host's own pace */
			:: area_sync != NEVER && area_sync <= now -> hlax = 1
#endif
			fi };
		h_pass();
		h_fire_due();
		atomic { hbusy = 0; lg = 0; res = 0; la = 0; wake = 0; x = 0; pastrej = 0; h_lD = 0 }
	:: !paused && stops > 0 ->    /* quiesce() */
		atomic { stops--; hbusy = 1; flags = 0 };
		area_sync = NEVER;
		h_pass();
		h_fire_due();
		if
		:: held -> h_handback(hgen)
		:: else -> skip
		fi;
		atomic { paused = 1; hbusy = 0; lg = 0; res = 0; la = 0; wake = 0; x = 0; pastrej = 0; h_lD = 0 }
	:: paused ->                  /* activate() */
		atomic { hbusy = 1; h_publish() };
		flags = 1;
		word = 1;
		atomic { summary = 1; paused = 0; hbusy = 0 }
	:: !paused && bound && detaches > 0 ->   /* detach() */
		atomic { detaches--; hbusy = 1; slot_sync = NEVER };
		atomic { x = word; word = 0 };   /* take_pending: seq_cst RMW */
		h_read(0);
		if
		:: res == RES_ARMED -> h_handback(lg)
		:: res == RES_REJ -> h_apply()
		:: else ->
			if
			:: held -> h_handback(hgen)
			:: else -> skip
			fi
		fi;
		atomic { held = 0; hgen = 0; hD = 0; bound = 0; hbusy = 0; lg = 0; res = 0; la = 0; wake = 0; x = 0; pastrej = 0; h_lD = 0 }
	:: !paused && !bound ->      /* bind() */
		atomic { hbusy = 1; slot_sync = FOLLOW };
		word = 1;
		atomic { summary = 1; bound = 1; hbusy = 0 }
	od
}
