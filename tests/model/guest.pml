/* SPDX-License-Identifier: MIT */
/*
 * The guest: pvtimer_guest.h (ABI 1.1) driven by a guest OS that arms,
 * re-arms and cancels one timer and halts while it waits. Included by
 * pvtimer.pml. Private state: ggen (its arm_gen), pv_armed, the backstop.
 */

/* decisions of the fallback rule */
#define R_PV 0
#define R_DISABLED 1
#define R_PAST 2
#define R_TOO_FAR 3
#define R_STALE 4
#define R_TOO_CLOSE 5


/* Write the guest line (atomic: the seqlock is abstracted), then OR the
 * pending word bit, then the summary bit: three shared steps. */
inline publish(arm, dl)
{
	atomic {
		pv_armed = arm;
		ggen = (ggen + 1) % M;
		line_gen = ggen; line_D = dl; line_armed = arm;
		line_fired = 0; line_woken = 0
	};
	word = 1;
	summary = 1
}

inline g_cancel()
{
	if
	:: pv_armed -> publish(0, 0)
	:: else -> skip
	fi
}

/* wrmsr IA32_TSC_DEADLINE: a deadline not in the future fires at once */
inline program_hw(x)
{
	atomic {
		if
		:: x <= now -> hw_irq = 1; hw_dl = 0
		:: else -> hw_dl = x
		fi;
		g_bk = 0
	}
}

/* The fallback rule (spec section 6) on values already loaded. */
inline rule(fl, sy, margin, use_horizon, dl, t, r)
{
	if
	:: !fl -> r = R_DISABLED
	:: else ->
		if
		:: dl <= t -> r = R_PAST
		:: else ->
			if
			:: use_horizon && dl - t > HORIZON -> r = R_TOO_FAR
			:: else ->
				if
				:: t > sy -> r = R_STALE
				:: else ->
					if
					:: dl < sy || dl - sy < margin -> r = R_TOO_CLOSE
					:: else -> r = R_PV
					fi
				fi
			fi
		fi
	fi
}

/* pvtimer_guest_arm(g, D): publish, then (ordered after the seq_cst ORs)
 * load flags and both syncs, then read the TSC, then decide. The early
 * shortcut check is left out: it can only fall back sooner. */
inline g_arm()
{
	publish(1, D);
	fl = flags;
	g_as = area_sync;
	g_ss = slot_sync;
	d_step {        /* read the TSC and decide */
		sy = (g_as < g_ss -> g_as : g_ss);
		rule(fl, sy, MARGIN, 1, D, now, r);
		g_bk = (r == R_PV && BACKSTOP > 0 -> now + BACKSTOP : 0);
		g_as = 0; g_ss = 0; sy = 0
	};
	if
	:: r != R_PV -> g_cancel(); program_hw(D)
	:: else ->
		/* backstop: hardware kept at most B ahead while pv-held */
		if
		:: g_bk != 0 && (hw_dl == 0 || hw_dl > g_bk) ->
			program_hw(g_bk)
		:: else -> g_bk = 0
		fi
	fi
}

/* pvtimer_guest_before_halt(): ok = 1 when the host holds D (halt on the
 * pv path), ok = 0 when the hardware timer has been programmed at D. */
inline g_check()
{
	d_step { ok = 1; g_halt_broken = 0 };
	if
	:: !pv_armed -> skip
	:: else ->
		atomic { wg = st_gen; wc = st_code };
		if
		:: wg == ggen && (wc == ST_REJ || wc == ST_HB) ->
			g_cancel(); program_hw(D); ok = 0
		:: wg == ggen && wc == ST_FIRED ->
#ifdef BUG_FIRED_DONE
			skip    /* 1.0: FIRED taken as done */
#else
			/* FALLBACK_FIRED: the interrupt has not been seen */
			atomic { pv_armed = 0; ok = 0; program_hw(D) }
#endif
		:: else ->
			fl = flags;
			g_as = area_sync;
			g_ss = slot_sync;
			d_step {        /* read the TSC and decide */
				sy = (g_as < g_ss -> g_as : g_ss);
				broken = (now > sy);
				g_bk = (BACKSTOP > 0 -> now + BACKSTOP : 0);
				/* PAST first: a held deadline already due is not
				 * left to the host (the backstop bound counts
				 * from D, not from this check) */
				if
				:: D <= now -> r = R_PAST
#ifdef BUG_SEEN_TRUST
				:: else -> if
					:: wg == ggen && wc == ST_SEEN && fl -> r = R_PV
#else
				:: else -> if
					:: wg == ggen && wc == ST_SEEN && fl && now <= sy -> r = R_PV
#endif
					:: else -> rule(fl, sy, 0, 0, D, now, r)
					fi
				fi;
				g_as = 0; g_ss = 0; sy = 0
			};
			if
			:: r == R_PV -> skip
			:: r == R_PAST -> program_hw(D); ok = 0
			:: else -> g_cancel(); program_hw(D); ok = 0
			fi
		fi
	fi;
	g_halt_broken = (ok && pv_armed && broken)
}

/* the guest OS runs its expired timers; if its timer is not due yet (a
 * stale hardware interrupt) it programs its next event again */
inline g_run()
{
	d_step {
		pv_armed = 0;
		if
		:: want && now >= D -> want = 0; D = 0
		:: want && now < D -> again = 1
		:: else -> skip
		fi
	}
}

/* pvtimer_guest_on_interrupt(): EXPIRED, HANDBACK, EARLY or SPURIOUS */
inline g_on_irq()
{
	if
	:: !pv_armed -> skip                     /* SPURIOUS */
	:: else ->
		d_step { dc = (now >= D) };              /* read the TSC */
		if
		:: dc -> dc = 0; g_run()                  /* EXPIRED */
		:: else ->
			atomic { wg = st_gen; wc = st_code };
			if
			:: wg == ggen && wc == ST_HB ->   /* HANDBACK */
				g_cancel(); program_hw(D)
#ifndef BUG_FIRED_DONE
			:: wg == ggen && wc == ST_FIRED -> /* EARLY */
				atomic { pv_armed = 0; program_hw(D) }
#endif
			:: else -> skip                 /* SPURIOUS */
			fi
		fi
	fi
}

/* pvtimer_guest_on_hw_timer(): a pv deadline already passed is consumed;
 * otherwise the pre-halt check decides: host still holds it -> backstop
 * re-armed at now + B; else fall back (hardware at D). */
inline g_on_hw()
{
	if
	:: !pv_armed -> g_run()                  /* HW_EXPIRED */
	:: else ->
		d_step { dc = (now >= D) };              /* read the TSC */
		if
		:: dc -> dc = 0; g_run()                  /* consumed */
		:: else ->
			g_check();
			if
			:: ok && pv_armed && g_bk != 0 ->    /* BACKSTOP */
				program_hw(g_bk)
			:: else -> g_bk = 0
			fi
		fi
	fi
}

inline pick_deadline()
{
	atomic {
		D = now + 1;
		do
		:: D < now + K -> D++
		:: break
		od
	}
}

active proctype guest()
{
	byte ggen;      /* last generation written (mod M) */
	bit pv_armed;   /* the guest believes the host holds D */
	byte sy, wg, wc, r;
	bit fl, ok, broken, again, dc;

#ifdef REJECTS
	/* a guest whose vector the host does not accept (it did not check
	 * the advertised range): only rule 1's wake saves it */
	if
	:: vec_ok = 1
	:: vec_ok = 0
	fi;
#endif
end_guest:
	do
	:: !want -> pick_deadline(); want = 1; g_arm(); atomic { wg = 0; wc = 0; fl = 0; r = 0; ok = 0; broken = 0; sy = 0; dc = 0 }
	:: want && again -> again = 0; g_arm(); atomic { wg = 0; wc = 0; fl = 0; r = 0; ok = 0; broken = 0; sy = 0; dc = 0 }
	:: want && !again && gops > 0 ->    /* re-arm */
		gops--; pick_deadline(); g_arm(); atomic { wg = 0; wc = 0; fl = 0; r = 0; ok = 0; broken = 0; sy = 0; dc = 0 }
	:: want && !again && gops > 0 ->    /* the OS cancels */
		gops--; g_cancel(); d_step { want = 0; D = 0 }
	:: want && !again ->
		g_check();
		atomic { g_bk = 0; halted = 1; wg = 0; wc = 0; fl = 0; r = 0; ok = 0; broken = 0; sy = 0; dc = 0 };
end_halt:
		(pv_irq || hw_irq);
		halted = 0;
		if
		:: pv_irq -> pv_irq = 0; g_on_irq()
		:: hw_irq -> hw_irq = 0; g_on_hw()
		fi;
		atomic { wg = 0; wc = 0; fl = 0; r = 0; ok = 0; broken = 0; sy = 0; dc = 0 }
	od
}
