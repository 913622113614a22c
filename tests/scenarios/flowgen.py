"""Packet builders shared by the scenario tests that generate their own captures (run with
/usr/bin/python3, which has scapy): TCP flows with a handshake, payloads each way and a FIN
exchange, one packet per millisecond from a fixed start time."""
from scapy.all import Ether, IP, TCP, Raw, wrpcap


class Capture:
    def __init__(self, start=1700000000.0):
        self.t = start
        self.pkts = []

    def add(self, p):
        p.time = self.t
        self.t += 0.001
        self.pkts.append(p)

    @staticmethod
    def eth():
        return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

    def tcp_flow(self, c, s, sport, dport, payloads):
        """Handshake, then (to_server, bytes) payloads in order, then FIN, FIN, ACK."""
        E = self.eth
        cseq, sseq = 1000, 5000
        self.add(E()/IP(src=c, dst=s)/TCP(sport=sport, dport=dport, flags="S", seq=cseq))
        cseq += 1
        self.add(E()/IP(src=s, dst=c)/TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq))
        sseq += 1
        self.add(E()/IP(src=c, dst=s)/TCP(sport=sport, dport=dport, flags="A", seq=cseq, ack=sseq))
        for to_server, data in payloads:
            if to_server:
                self.add(E()/IP(src=c, dst=s)/TCP(sport=sport, dport=dport, flags="PA", seq=cseq,
                                                  ack=sseq)/Raw(data))
                cseq += len(data)
            else:
                self.add(E()/IP(src=s, dst=c)/TCP(sport=dport, dport=sport, flags="PA", seq=sseq,
                                                  ack=cseq)/Raw(data))
                sseq += len(data)
        self.add(E()/IP(src=c, dst=s)/TCP(sport=sport, dport=dport, flags="FA", seq=cseq, ack=sseq))
        self.add(E()/IP(src=s, dst=c)/TCP(sport=dport, dport=sport, flags="FA", seq=sseq,
                                          ack=cseq + 1))
        self.add(E()/IP(src=c, dst=s)/TCP(sport=sport, dport=dport, flags="A", seq=cseq + 1,
                                          ack=sseq + 1))

    def write(self, path):
        wrpcap(path, self.pkts)
