"""A real SMSC for the SMS channel's tests: smpp34's Rust SMPP 3.4 server, run as its own process.

Independent of the client under test (aiosmpplib): a different SMPP implementation
with its own PDU codec. Every ``submit_sm`` it receives is appended as one JSON
line to ``--log`` (flushed), answered according to the flags, and followed by a
delivery receipt (``deliver_sm``, esm_class 0x04) when the sender asked for one.
Prints ``READY`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import smpp34

TRIGGER_TLV = 0x1400  # the vendor TLV in which Kairos sends the trigger id


def _record(ev: smpp34.SubmitSmEvent, answer: str, message_id: str) -> dict[str, object]:
    """What the test needs to know about one received submit_sm."""
    tlvs = {t.tag: t.value for t in ev.tlvs}
    body = ev.short_message
    udh: list[int] | None = None
    if ev.esm_class & 0x40:  # UDHI: a concatenated-SMS header precedes the text
        n = body[0]
        header, body = body[1 : 1 + n], body[1 + n :]
        if header[0] == 0x00:  # IEI 0: 8-bit reference
            udh = [header[2], header[3], header[4]]
        else:  # IEI 8: 16-bit reference
            udh = [header[2] << 8 | header[3], header[4], header[5]]
    trigger = tlvs.get(TRIGGER_TLV, b"").rstrip(b"\0").decode("ascii", "replace")
    return {
        "answer": answer,
        "message_id": message_id,
        "session": ev.session_id,
        "source": ev.source_addr,
        "destination": ev.destination_addr,
        "esm_class": ev.esm_class,
        "data_coding": ev.data_coding,
        "registered_delivery": ev.registered_delivery,
        "udh": udh,  # [reference, total, sequence] or None
        "body": body.hex(),
        "trigger": trigger,
    }


async def _serve(args: argparse.Namespace) -> None:
    server = smpp34.Server(host="127.0.0.1", port=args.port, system_id="TESTSMSC")
    await server.start()
    sessions: dict[str, smpp34.Esme] = {}
    throttle_left = args.throttle
    counter = 0
    tasks: set[asyncio.Task[None]] = set()
    log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    print("READY", flush=True)

    async def answer(ev: smpp34.SubmitSmEvent, message_id: str, receipt: bool) -> None:
        if args.delay_ms:
            await asyncio.sleep(args.delay_ms / 1000)
        ev.accept(message_id=message_id)
        esme = sessions.get(ev.session_id)
        if receipt and args.receipt_delay_ms:  # a real SMSC reports delivery well after the submit_sm_resp
            await asyncio.sleep(args.receipt_delay_ms / 1000)
        if receipt and args.receipt != "none" and esme is not None and esme.can_receive:
            stat, err = ("DELIVRD", "000") if args.receipt == "delivered" else ("UNDELIV", "001")
            text = (
                f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
                f"submit date:2611230000 done date:2611230001 stat:{stat} err:{err} text:"
            )
            await esme.deliver_sm(
                destination_addr=ev.source_addr or "0",
                source_addr=ev.destination_addr,
                esm_class=0x04,
                short_message=text.encode("ascii"),
            )

    while True:
        ev = await server.next()
        if isinstance(ev, smpp34.Esme):
            sessions[ev.session_id] = ev
            log.write(json.dumps({"bind": ev.system_id, "session": ev.session_id}) + "\n")
            log.flush()
        elif isinstance(ev, smpp34.Unbound):
            sessions.pop(ev.session_id, None)
        elif isinstance(ev, smpp34.SubmitSmEvent):
            if throttle_left > 0:
                throttle_left -= 1
                log.write(json.dumps(_record(ev, "throttled", "")) + "\n")
                log.flush()
                ev.reject(smpp34.ESME_RTHROTTLED)
                continue
            counter += 1
            message_id = f"m{args.port}-{counter}"
            log.write(json.dumps(_record(ev, "accepted", message_id)) + "\n")
            log.flush()
            task = asyncio.create_task(answer(ev, message_id, bool(ev.registered_delivery & 1)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


def main(argv: list[str] | None = None) -> None:
    """Run the SMSC until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--throttle", type=int, default=0, help="reject the first N submits with ESME_RTHROTTLED")
    parser.add_argument("--delay-ms", type=int, default=0, help="answer each submit after this delay")
    parser.add_argument("--receipt-delay-ms", type=int, default=50, help="send the receipt this long after answering")
    parser.add_argument("--receipt", choices=["delivered", "failed", "none"], default="delivered")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
